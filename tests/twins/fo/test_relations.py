"""Relations: a written reference must name an existing related row (in the same company when both have one).

The refusal has the shape of a real F&O response:
https://github.com/sebasdiaz/Chacomer_NextGen/blob/8c58d61219297c998e452fe1fcc33af73009ed11/tests/AxxonCustomers.Functions.Tests/FoODataExceptionTests.cs
"""

from __future__ import annotations

import httpx

from tests.twins.fo.conftest import KEY_PATH, customer

CUSTOMERS = "/data/CustomersV3"
WRITE_EXCEPTION = "Microsoft.Dynamics.Platform.Integration.Services.OData.AxODataWriteException"


def _refusal(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["message"] == "An error has occurred."
    inner: dict[str, str] = error["innererror"]
    return inner


def test_missing_customer_group_is_refused_with_the_infolog(client: httpx.Client) -> None:
    """A customer naming a group that does not exist is refused with F&O's validateField Infolog."""
    inner = _refusal(client.post(CUSTOMERS, json=customer("US-001", CustomerGroupId="Local")))
    assert inner == {
        "message": "Write failed for table row of type 'CustCustomerV3Entity'. Infolog: Warning: The value "
        "'Local' in field 'CustomerGroupId' is not found in the related table 'CustomerGroups'.; "
        "Warning: validateField failed on field 'CustCustomerV3Entity.CustomerGroupId'.",
        "type": WRITE_EXCEPTION,
        "stacktrace": "",
    }
    assert client.get(CUSTOMERS).json()["value"] == []


def test_existing_group_is_accepted_in_any_letter_case(client: httpx.Client) -> None:
    """A customer naming its company's existing group, currency and payment terms is created."""
    assert client.post(CUSTOMERS, json=customer("US-001")).status_code == 201
    assert client.post(CUSTOMERS, json=customer("US-002", PaymentTerms="NET30")).status_code == 201


def test_another_companys_group_is_refused(client: httpx.Client) -> None:
    """A group that exists only in DEMF does not satisfy a USMF customer, but does a DEMF one."""
    group = {"dataAreaId": "demf", "CustomerGroupId": "20", "Description": "Retail"}
    assert client.post("/data/CustomerGroups", json=group).status_code == 201
    inner = _refusal(client.post(CUSTOMERS, json=customer("US-001", CustomerGroupId="20")))
    assert "The value '20' in field 'CustomerGroupId' is not found" in inner["message"]
    assert client.post(CUSTOMERS, json=customer("DE-001", "demf", CustomerGroupId="20")).status_code == 201


def test_global_related_entities_ignore_the_company(client: httpx.Client) -> None:
    """A currency is not company-specific: any company's customer may name it, an unknown one is refused."""
    assert client.post(CUSTOMERS, json=customer("DE-001", "demf")).status_code == 201
    inner = _refusal(client.post(CUSTOMERS, json=customer("US-001", SalesCurrencyCode="XYZ")))
    assert "in the related table 'Currencies'" in inner["message"]
    assert inner["message"].endswith(
        "validateField failed on field 'CustCustomerV3Entity.SalesCurrencyCode'."
    )


def test_empty_references_are_not_checked(client: httpx.Client) -> None:
    """A relation whose field is empty or null names nothing and is not checked."""
    body = customer("US-001", CustomerGroupId="", PaymentTerms=None)
    assert client.post(CUSTOMERS, json=body).status_code == 201


def test_patch_checks_the_references_it_writes(client: httpx.Client) -> None:
    """An update to a missing group is refused and changes nothing; other fields update freely."""
    client.post(CUSTOMERS, json=customer("US-001"))
    _refusal(client.patch(KEY_PATH, json={"CustomerGroupId": "Nope"}))
    assert client.get(KEY_PATH).json()["CustomerGroupId"] == "10"
    assert client.patch(KEY_PATH, json={"OrganizationName": "Renamed"}).status_code == 204


def test_a_customer_may_be_its_own_invoice_account(client: httpx.Client) -> None:
    """InvoiceAccount refers to CustomersV3: the new row itself or another customer satisfies it."""
    assert client.post(CUSTOMERS, json=customer("US-001", InvoiceAccount="US-001")).status_code == 201
    assert client.post(CUSTOMERS, json=customer("US-002", InvoiceAccount="US-001")).status_code == 201
    _refusal(client.post(CUSTOMERS, json=customer("US-003", InvoiceAccount="US-999")))


def test_a_group_must_name_existing_payment_terms(client: httpx.Client) -> None:
    """CustomerGroups.PaymentTermId refers to the same company's PaymentTerms."""
    group = {"dataAreaId": "usmf", "CustomerGroupId": "30", "PaymentTermId": "Net90"}
    inner = _refusal(client.post("/data/CustomerGroups", json=group))
    assert inner["message"].startswith("Write failed for table row of type 'CustCustomerGroupEntity'.")
    assert "in the related table 'PaymentTerms'" in inner["message"]
