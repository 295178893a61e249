"""A row the map cannot carry yields a TransformError that names the map and the field."""

from __future__ import annotations

import pytest

from dualbus.shared.errors import LookupUnresolvedError, TransformError
from dualbus.shared.maps import LookupBinding, load_maps, natural_key, odata_literal, to_dataverse, to_fo

MAPS = load_maps()
CUSTOMER = {"dataAreaId": "USMF", "CustomerAccount": "US-001", "PartyType": "Organization"}
ACCOUNT = {"accountnumber": "US-001", "msdyn_company": {"cdm_companycode": "USMF"}}


def test_value_missing_from_value_map() -> None:
    """An on-hold status the value map does not know is refused, naming map, field and value."""
    with pytest.raises(TransformError) as caught:
        to_dataverse(MAPS["customers"], {**CUSTOMER, "OnHoldStatus": "Sometimes"})
    assert caught.value.map_name == "customers"
    assert caught.value.field == "OnHoldStatus"
    assert "'Sometimes' is not in the value map" in str(caught.value)


def test_option_value_missing_from_value_map_on_the_way_back() -> None:
    """An option-set value the map does not know is refused on the way to F&O."""
    with pytest.raises(TransformError, match="msdyn_onholdstatus") as caught:
        to_fo(MAPS["customers"], {**ACCOUNT, "msdyn_onholdstatus": 7})
    assert caught.value.field == "msdyn_onholdstatus"


def test_wrong_type() -> None:
    """A credit limit given as text is refused with the expected and the actual type."""
    with pytest.raises(TransformError, match="expected a decimal value, got str") as caught:
        to_dataverse(MAPS["customers"], {**CUSTOMER, "CreditLimit": "1000"})
    assert caught.value.field == "CreditLimit"


def test_boolean_is_not_a_number() -> None:
    """True is not accepted where a decimal is expected, though Python counts it as an int."""
    with pytest.raises(TransformError, match="got bool"):
        to_dataverse(MAPS["customers"], {**CUSTOMER, "CreditLimit": True})


def test_string_over_the_target_maximum_length() -> None:
    """An organisation name longer than Dataverse's account name (160, from the schema) is refused."""
    with pytest.raises(TransformError, match="161 characters is over the maximum of 160") as caught:
        to_dataverse(MAPS["customers"], {**CUSTOMER, "OrganizationName": "x" * 161})
    assert caught.value.map_name == "customers"
    assert caught.value.field == "OrganizationName"


def test_string_at_the_maximum_length_passes() -> None:
    """A name of exactly the maximum length is carried."""
    change = to_dataverse(MAPS["customers"], {**CUSTOMER, "OrganizationName": "x" * 160})
    assert change.payload["name"] == "x" * 160


def test_required_company_lookup_missing() -> None:
    """A customer without a company cannot be bound to cdm_companies."""
    record = {"CustomerAccount": "US-001", "dataAreaId": ""}
    with pytest.raises(LookupUnresolvedError, match="cdm_companies") as caught:
        to_dataverse(MAPS["customers"], record)
    assert caught.value.field == "msdyn_company"


def test_required_company_lookup_absent_on_the_way_back() -> None:
    """An account without a company reference cannot become an F&O customer."""
    with pytest.raises(LookupUnresolvedError, match="no cdm_companies reference"):
        to_fo(MAPS["customers"], {"accountnumber": "US-001"})


def test_expanded_lookup_without_key_columns() -> None:
    """An expanded lookup that carries none of the target's key columns cannot be resolved."""
    with pytest.raises(LookupUnresolvedError, match="carries none of"):
        to_fo(MAPS["customers"], {**ACCOUNT, "transactioncurrencyid": {"currencyname": "Euro"}})


def test_lookups_that_disagree_on_the_company() -> None:
    """A group expanded with another company than the account's own is refused."""
    row = {**ACCOUNT, "msdyn_customergroupid": {"msdyn_company": "DEMF", "msdyn_groupid": "10"}}
    with pytest.raises(TransformError, match="lookups disagree") as caught:
        to_fo(MAPS["customers"], row)
    assert caught.value.field == "dataAreaId"


def test_missing_required_field() -> None:
    """A customer whose account number is null is refused."""
    with pytest.raises(TransformError, match="required value is missing") as caught:
        to_dataverse(MAPS["customers"], {**CUSTOMER, "CustomerAccount": None})
    assert caught.value.field == "CustomerAccount"


def test_natural_key_needs_every_part() -> None:
    """A natural key with a missing part is refused, naming the part."""
    with pytest.raises(TransformError, match="natural key part") as caught:
        natural_key(MAPS["customers"], "fo", {"CustomerAccount": "A"})
    assert caught.value.field == "dataAreaId"


def test_odata_bind_quotes_and_encodes_key_values() -> None:
    """Quotes in a key are doubled and characters that would break the URL are percent-encoded."""
    binding = LookupBinding("msdyn_customergroupid", "msdyn_customergroups", {"msdyn_groupid": "O'Neil / 1"})
    assert binding.odata_bind() == "/msdyn_customergroups(msdyn_groupid='O''Neil%20%2F%201')"
    assert LookupBinding("x", "t", None).odata_bind() is None
    assert (odata_literal(True), odata_literal(3), odata_literal(1.5)) == ("true", "3", "1.5")
