"""A table's alternate keys as the Web API lists them (``EntityDefinitions(LogicalName='...')/Keys``).

Sources in ``sandbox/dataverse/definitions.py``; what dualbus asks of them in ``shared/dataverse_keys.py``.
"""

from __future__ import annotations

import httpx

from tests.twins.dataverse.support import client_for, error_of, start

_KEYS = "EntityDefinitions(LogicalName='account')/Keys"


def test_a_tables_keys_are_listed_with_their_columns_and_a_built_index(client: httpx.Client) -> None:
    response = client.get(_KEYS, params={"$select": "KeyAttributes,EntityKeyIndexStatus"})
    assert response.status_code == 200
    [key] = response.json()["value"]
    assert set(key) == {"MetadataId", "KeyAttributes", "EntityKeyIndexStatus"}  # the key property, always
    assert sorted(key["KeyAttributes"]) == ["accountnumber", "msdyn_company"]
    assert key["EntityKeyIndexStatus"] == "Active"
    assert client.get(_KEYS).json()["value"][0]["EntityLogicalName"] == "account"  # no $select: all


def test_a_property_keys_do_not_have_and_a_table_there_is_not_are_refused(client: httpx.Client) -> None:
    status, _code, message = error_of(client.get(_KEYS, params={"$select": "KeyAttributes,Nope"}))
    assert (status, message) == (
        400,
        "Could not find a property named 'Nope' on type 'Microsoft.Dynamics.CRM.EntityKeyMetadata'.",
    )
    assert client.get("EntityDefinitions(LogicalName='nosuchtable')/Keys").status_code == 404


def test_a_table_left_without_its_keys_lists_none_and_its_rows_cannot_be_addressed_by_them() -> None:
    with start(limits=None, without_keys=frozenset({"accounts"})) as twin, client_for(twin) as client:
        assert client.get(_KEYS).json()["value"] == []
        refused = client.get(
            "accounts(accountnumber='A-1',_msdyn_company_value=00000000-0000-0000-0000-000000000001)"
        )
        assert refused.status_code == 400
        assert "not valid for resource 'Microsoft.Dynamics.CRM.account'" in error_of(refused)[2]
