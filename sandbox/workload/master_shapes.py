"""The master data maps' shapes: customers, vendors, contacts and products.

In Dataverse load order: contacts after msdyn_vendors, since vendor contacts bind to their vendor.
"""

from __future__ import annotations

from types import MappingProxyType

from dualbus.sandbox.workload.dataverse_columns import (
    NO_YES,
    ON_HOLD,
    Bind,
    Column,
    Shape,
    columns,
    company_bind,
    striped,
)

__all__ = ["MASTER_SHAPES"]

MASTER_SHAPES: tuple[Shape, ...] = (
    Shape(
        "customers",
        "CustomersV3",
        "accounts",
        (
            *columns("CustomerAccount accountnumber", "OrganizationName name", "CreditLimit creditlimit"),
            Column("OnHoldStatus", "msdyn_onholdstatus", ON_HOLD),
            Column("CreditLimitIsMandatory", "msdyn_creditlimitismandatory", NO_YES),
            *columns(
                "DeliveryAddressStreet address1_line1",
                "DeliveryAddressCity address1_city",
                "DeliveryAddressZipCode address1_postalcode",
                "DeliveryAddressCountryRegionISOCode address1_country",
                "PrimaryContactPhone telephone1",
                "PrimaryContactEmail emailaddress1",
            ),
        ),
        (
            company_bind(),
            striped("msdyn_customergroupid", "msdyn_customergroups", "msdyn_groupid", "CustomerGroupId"),
            Bind(
                "transactioncurrencyid", "transactioncurrencies", (("isocurrencycode", "SalesCurrencyCode"),)
            ),
            striped("msdyn_paymentterm", "msdyn_paymentterms", "msdyn_name", "PaymentTerms"),
        ),
        constants={"customertypecode": 3},
        only=("PartyType", "Organization"),
    ),
    Shape(
        "vendors",
        "VendorsV2",
        "msdyn_vendors",
        (
            *columns("VendorAccountNumber msdyn_vendoraccountnumber", "VendorOrganizationName msdyn_name"),
            Column(
                "VendorPartyType", "msdyn_isperson", MappingProxyType({"Person": True, "Organization": False})
            ),
            *columns(
                "PersonFirstName msdyn_firstname",
                "PersonLastName msdyn_lastname",
                "CreditLimit msdyn_vendorcreditlimit",
                "AddressStreet msdyn_addressstreet",
                "AddressCity msdyn_addresscity",
                "AddressZipCode msdyn_addresszipcode",
                "AddressCountryRegionId msdyn_addresscountryregionid",
                "PrimaryEmailAddress msdyn_primaryemailaddress",
                "PrimaryPhoneNumber msdyn_pimaryphonenumber",
            ),
            Column("OnHoldStatus", "msdyn_onholdstatus", ON_HOLD),
            Column("IsOneTimeVendor", "msdyn_isonetimevendor", NO_YES),
        ),
        (
            company_bind(),
            striped("msdyn_vendorgroupid", "msdyn_vendorgroups", "msdyn_vendorgroup", "VendorGroupId"),
            Bind("msdyn_currencycode", "transactioncurrencies", (("isocurrencycode", "CurrencyCode"),)),
            striped("msdyn_paymentterms", "msdyn_paymentterms", "msdyn_name", "DefaultPaymentTermsName"),
        ),
    ),
    Shape(
        "customer_contacts",
        "CustomersV3",
        "contacts",
        columns(
            "CustomerAccount msdyn_contactpersonid",
            "PersonFirstName firstname",
            "PersonMiddleName middlename",
            "PersonLastName lastname",
            "AddressStreet address1_line1",
            "AddressCity address1_city",
            "AddressZipCode address1_postalcode",
            "AddressCountryRegionISOCode address1_country",
        ),
        (
            company_bind(),
            striped("msdyn_customergroupid", "msdyn_customergroups", "msdyn_groupid", "CustomerGroupId"),
            Bind(
                "transactioncurrencyid", "transactioncurrencies", (("isocurrencycode", "SalesCurrencyCode"),)
            ),
            striped("msdyn_paymentterms", "msdyn_paymentterms", "msdyn_name", "PaymentTerms"),
        ),
        constants={"msdyn_sellable": True},
        only=("PartyType", "Person"),
    ),
    Shape(
        "vendor_contacts",
        "CDSContactPersonsV2",
        "contacts",
        columns(
            "ContactPersonId msdyn_contactpersonid",
            "ContactPersonPartyNumber msdyn_partynumber",
            "FirstName firstname",
            "MiddleName middlename",
            "LastName lastname",
            "PrimaryEmailAddress emailaddress1",
            "PrimaryPhoneNumber telephone1",
            "EmploymentProfession jobtitle",
            "EmploymentDepartment department",
        ),
        (
            company_bind(),
            striped(
                "msdyn_vendorcontactid",
                "msdyn_vendors",
                "msdyn_vendoraccountnumber",
                "AssociatedContactNumber",
            ),
        ),
        constants={"msdyn_contactforvendor": True},
        only=("AssociatedContactType", "Vendor"),
    ),
    Shape(
        "products",
        "CDSReleasedDistinctProducts",
        "products",
        (
            *columns(
                "ProductNumber msdyn_productnumber", "ProductName name", "ProductDescription description"
            ),
            *columns("ItemNumber msdyn_itemnumber", "SalesPrice price", "UnitCost currentcost"),
            Column("ProductType", "producttypecode", MappingProxyType({"Item": 1, "Service": 3})),
            Column("SalesUnitDecimalPrecision", "quantitydecimal"),
            Column("IsStockedProduct", "msdyn_isstockedproduct", NO_YES),
        ),
        (
            company_bind("msdyn_CompanyId"),
            Bind("transactioncurrencyid", "transactioncurrencies", (("isocurrencycode", "CurrencyCode"),)),
            Bind("defaultuomid", "uoms", (("msdyn_symbol", "SalesUnitSymbol"),)),
        ),
    ),
    Shape(
        "shared_product_details",
        "ReleasedProductsV2",
        "msdyn_sharedproductdetails",
        (
            *columns("ItemNumber msdyn_itemnumber", "SalesPrice msdyn_salesprice"),
            *columns("PurchasePrice msdyn_purchaseprice", "UnitCost msdyn_unitcost"),
            Column("NetProductWeight", "msdyn_netproductweight"),
            Column(
                "ProductType",
                "msdyn_producttype",
                MappingProxyType({"Item": 806_380_001, "Service": 806_380_002}),
            ),
            Column("IsPhantom", "msdyn_isphantom", NO_YES),
        ),
        (
            company_bind(),
            Bind("msdyn_salesunitsymbol", "uoms", (("msdyn_symbol", "SalesUnitSymbol"),)),
            Bind("msdyn_inventoryunitsymbol", "uoms", (("msdyn_symbol", "InventoryUnitSymbol"),)),
            Bind("msdyn_purchaseunitsymbol", "uoms", (("msdyn_symbol", "PurchaseUnitSymbol"),)),
        ),
    ),
)
