"""Numbers carry the ranges both sides hold, from the schemas, and the transform refuses what does not fit."""

from __future__ import annotations

import pytest

from dualbus.shared.errors import MapDefinitionError, TransformError
from dualbus.shared.maps import FieldMap, load_maps, to_dataverse, to_fo

MAPS = load_maps()
CUSTOMER = {"dataAreaId": "USMF", "CustomerAccount": "US-001", "PartyType": "Organization"}
ACCOUNT = {"msdyn_company": {"cdm_companycode": "USMF"}, "accountnumber": "US-001", "customertypecode": 3}


def _field(map_name: str, fo: str) -> FieldMap:
    return next(f for f in MAPS[map_name].fields if f.fo == fo)


def test_ranges_come_from_the_schemas_or_the_platforms_limits():
    """A stated range is taken as is; a Dataverse column without one gets its type's supported values."""
    assert _field("customers", "CreditLimit").bounds_on("dataverse") == (0, 100_000_000_000_000)
    assert _field("vendors", "CreditLimit").bounds_on("dataverse") == (-100_000_000_000, 100_000_000_000)
    assert _field("payment_terms", "NumberOfDays").bounds_on("fo") == (-(2**31), 2**31 - 1)
    assert _field("customers", "OrganizationName").bounds_on("dataverse") == (None, None)


@pytest.mark.parametrize("credit", [0, 100_000_000_000_000, 12.5])
def test_values_within_both_ranges_are_carried(credit):
    """The range's ends and values inside it reach the payload unchanged."""
    change = to_dataverse(MAPS["customers"], {**CUSTOMER, "CreditLimit": credit})
    assert change.payload["creditlimit"] == credit


@pytest.mark.parametrize("credit", [1e20, -1e20, -0.01, 100_000_000_000_000.5])
def test_a_number_the_target_cannot_hold_is_refused(credit):
    """1e20 is not sent to Dataverse's creditlimit: the transform names the field and the range."""
    with pytest.raises(TransformError, match=r"outside the range \[0, 100000000000000\]") as caught:
        to_dataverse(MAPS["customers"], {**CUSTOMER, "CreditLimit": credit})
    assert caught.value.field == "CreditLimit"


def test_a_number_the_source_cannot_hold_is_refused_on_the_way_back():
    """A Dataverse vendor credit limit past Decimal's 10^11 cannot be a real Dataverse value."""
    vendor = {"msdyn_company": {"cdm_companycode": "USMF"}, "msdyn_vendoraccountnumber": "V-1"}
    with pytest.raises(TransformError, match="dataverse 'msdyn_vendorcreditlimit'"):
        to_fo(MAPS["vendors"], {**vendor, "msdyn_vendorcreditlimit": 1e12})


def test_an_integer_past_int32_is_refused():
    """F&O's Edm.Int32 NumberOfDays holds no 2^31."""
    terms = {"dataAreaId": "USMF", "Name": "N30", "NumberOfDays": 2**31}
    with pytest.raises(TransformError, match="outside the range"):
        to_dataverse(MAPS["payment_terms"], terms)


def test_ranges_belong_to_number_fields_only():
    """A map may not give a string field a numeric range."""
    with pytest.raises(ValueError, match="numeric bounds"):
        FieldMap(fo="Name", dataverse="name", direction="two_way", type="string", dataverse_max=5)
    assert issubclass(MapDefinitionError, ValueError)
