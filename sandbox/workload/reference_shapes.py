"""The reference maps' shapes: companies, currencies, organisation, units, payment terms and groups.

In Dataverse load order: a lookup's target table before the tables that bind to it.
"""

from __future__ import annotations

from dualbus.sandbox.workload.dataverse_columns import (
    HIERARCHY_PURPOSE,
    NO_YES,
    PAYMENT_METHOD,
    SYSTEM_OF_UNITS,
    UNIT_TYPE,
    Bind,
    Column,
    Shape,
    columns,
    company_bind,
    striped,
)

__all__ = ["REFERENCE_SHAPES"]

REFERENCE_SHAPES: tuple[Shape, ...] = (
    Shape(
        "company",
        "LegalEntities",
        "cdm_companies",
        columns("LegalEntityId cdm_companycode", "Name cdm_name"),
    ),
    Shape(
        "currency",
        "Currencies",
        "transactioncurrencies",
        columns("CurrencyCode isocurrencycode", "Name currencyname", "Symbol currencysymbol"),
        constants={"exchangerate": 1.0},
    ),
    Shape(
        "organisation_legal_entities",
        "LegalEntities",
        "msdyn_internalorganizations",
        columns(
            "PartyNumber msdyn_partynumber",
            "Name msdyn_name",
            "NameAlias msdyn_namealias",
            "LanguageId msdyn_languageid",
            "LegalEntityId msdyn_companycode",
        ),
        constants={"msdyn_type": 806_380_000},
    ),
    Shape(
        "organisation_operating_units",
        "OperatingUnits",
        "msdyn_internalorganizations",
        (
            *columns("PartyNumber msdyn_partynumber", "Name msdyn_name", "NameAlias msdyn_namealias"),
            *columns("LanguageId msdyn_languageid"),
            Column("OperatingUnitType", "msdyn_type", UNIT_TYPE),
        ),
    ),
    Shape(
        "organisation_hierarchy_types",
        "OrganizationHierarchyTypes",
        "msdyn_internalorganizationhierarchytypes",
        columns("Name msdyn_name"),
    ),
    Shape(
        "organisation_hierarchy_purposes",
        "OrganizationHierarchyPurposes",
        "msdyn_internalorganizationhierarchypurposes",
        (
            Column("HierarchyType", "msdyn_hierarchypurposetypename"),
            Column("HierarchyPurpose", "msdyn_hierarchypurpose", HIERARCHY_PURPOSE),
            Column("Immutable", "msdyn_immutable", NO_YES),
            Column("SetAsDefault", "msdyn_setasdefault", NO_YES),
        ),
        (
            Bind(
                "msdyn_hierarchytype",
                "msdyn_internalorganizationhierarchytypes",
                (("msdyn_name", "HierarchyType"),),
            ),
        ),
    ),
    Shape(
        "organisation_hierarchies",
        "OrganizationHierarchyPublished",
        "msdyn_internalorganizationhierarchies",
        columns(
            "HierarchyType msdyn_hierarchytypename",
            "ParentOrganizationPartyNumber msdyn_parentpartyid",
            "ChildOrganizationPartyNumber msdyn_childpartyid",
            "validFrom msdyn_validfrom",
            "validTo msdyn_validto",
        ),
        (
            Bind(
                "msdyn_hierarchytypeid",
                "msdyn_internalorganizationhierarchytypes",
                (("msdyn_name", "HierarchyType"),),
            ),
            Bind(
                "msdyn_childid",
                "msdyn_internalorganizations",
                (("msdyn_partynumber", "ChildOrganizationPartyNumber"),),
            ),
            Bind(
                "msdyn_parentid",
                "msdyn_internalorganizations",
                (("msdyn_partynumber", "ParentOrganizationPartyNumber"),),
            ),
        ),
    ),
    Shape(
        "units",
        "UnitsOfMeasure",
        "uoms",
        (
            *columns("UnitSymbol msdyn_symbol", "UnitSymbol name", "UnitClass msdyn_externalunitclassname"),
            *columns("DecimalPrecision msdyn_decimalprecision", "UnitDescription msdyn_description"),
            Column("IsBaseUnit", "msdyn_isbaseunit", NO_YES),
            Column("IsSystemUnit", "msdyn_issystemunit", NO_YES),
            Column("SystemOfUnits", "msdyn_systemofunits", SYSTEM_OF_UNITS),
        ),
    ),
    Shape(
        "payment_terms",
        "PaymentTerms",
        "msdyn_paymentterms",
        (
            *columns("Name msdyn_name", "Description msdyn_description", "NumberOfDays msdyn_days"),
            *columns("NumberOfMonths msdyn_numberofmonth", "CutoffDayOfMonth msdyn_cutoffdayofmonth"),
            Column("IsCashPayment", "msdyn_iscashpayment", NO_YES),
            Column("IsDefaultPaymentTerm", "msdyn_isdefaultpaymentterm", NO_YES),
            Column("PaymentMethodType", "msdyn_paymentmethodtype", PAYMENT_METHOD),
        ),
        (company_bind(),),
    ),
    Shape(
        "customer_groups",
        "CustomerGroups",
        "msdyn_customergroups",
        (
            *columns("CustomerGroupId msdyn_groupid", "Description msdyn_description"),
            Column("IsSalesTaxIncludedInPrice", "msdyn_issalestaxincludedinprice", NO_YES),
        ),
        (
            company_bind(),
            striped("msdyn_paymenttermid", "msdyn_paymentterms", "msdyn_name", "PaymentTermId"),
        ),
    ),
    Shape(
        "vendor_groups",
        "VendorGroups",
        "msdyn_vendorgroups",
        columns("VendorGroupId msdyn_vendorgroup", "Description msdyn_description"),
        (
            company_bind(),
            striped("msdyn_paymentterms", "msdyn_paymentterms", "msdyn_name", "DefaultPaymentTermName"),
        ),
    ),
)
