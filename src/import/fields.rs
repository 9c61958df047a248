//! The fields each import kind can fill, as clients list them in grouped,
//! searchable dropdowns, with the header spellings the suggested mapping knows.

use crate::auth::Permission;

/// What is imported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImportKind {
    Users,
    Providers,
    Patients,
    Locations,
}

impl ImportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Users => "USERS",
            Self::Providers => "PROVIDERS",
            Self::Patients => "PATIENTS",
            Self::Locations => "LOCATIONS",
        }
    }

    /// What an import of this kind needs beyond IMPORTS_RUN: the permissions of
    /// the mutations its rows stand for (mapping `roles` also needs
    /// ROLES_MANAGE, checked where roles are given).
    pub fn write_permissions(self) -> &'static [Permission] {
        match self {
            Self::Users => &[Permission::UsersWrite],
            Self::Providers => &[Permission::ProvidersWrite],
            Self::Patients => &[Permission::PatientsWrite, Permission::PatientsAll],
            Self::Locations => &[Permission::LocationsManage],
        }
    }

    /// The tables an import of this kind writes, its own rows' log included.
    pub fn written_tables(self) -> Vec<&'static str> {
        use sea_orm::EntityName;
        let mut tables = match self {
            Self::Users | Self::Providers => vec![
                entity::user::Entity.table_name(),
                entity::user_role::Entity.table_name(),
                entity::provider::Entity.table_name(),
            ],
            Self::Patients => vec![
                entity::patient::Entity.table_name(),
                entity::enrollment::Entity.table_name(),
                entity::patient_link::Entity.table_name(),
            ],
            Self::Locations => vec![entity::location::Entity.table_name()],
        };
        tables.push(entity::import_row::Entity.table_name());
        tables
    }

    pub fn from_stored(stored: &str) -> Option<Self> {
        match stored {
            "USERS" => Some(Self::Users),
            "PROVIDERS" => Some(Self::Providers),
            "PATIENTS" => Some(Self::Patients),
            "LOCATIONS" => Some(Self::Locations),
            _ => None,
        }
    }
}

/// A target field of an import.
#[derive(Clone, Copy, Debug)]
pub struct FieldSpec {
    pub key: &'static str,
    pub label: &'static str,
    pub category: &'static str,
    pub subcategory: Option<&'static str>,
    pub required: bool,
    pub description: &'static str,
    /// Header spellings people use for it, besides its key and label.
    pub synonyms: &'static [&'static str],
}

const fn field(
    key: &'static str,
    label: &'static str,
    category: &'static str,
    subcategory: Option<&'static str>,
    required: bool,
    description: &'static str,
    synonyms: &'static [&'static str],
) -> FieldSpec {
    FieldSpec {
        key,
        label,
        category,
        subcategory,
        required,
        description,
        synonyms,
    }
}

const EMAIL: FieldSpec = field(
    "email",
    "Email",
    "Login",
    None,
    true,
    "The username and identity of the record: an existing user with this email is updated, otherwise one is created.",
    &[
        "e-mail",
        "email address",
        "e-mail address",
        "mail",
        "username",
        "user name",
        "login",
        "work email",
    ],
);

fn person(names_required: bool) -> [FieldSpec; 9] {
    [
        field(
            "firstName",
            "First name",
            "Person",
            Some("Name"),
            names_required,
            "Given name.",
            &[
                "first",
                "given name",
                "forename",
                "vorname",
                "prenom",
                "fname",
            ],
        ),
        field(
            "lastName",
            "Last name",
            "Person",
            Some("Name"),
            names_required,
            "Family name.",
            &["last", "surname", "family name", "nachname", "lname"],
        ),
        field(
            "employeeStatus",
            "Employee status",
            "Employment",
            None,
            false,
            "Active, Inactive or Leave; Active when absent.",
            &["status", "employment status", "hr status"],
        ),
        field(
            "title",
            "Title",
            "Employment",
            None,
            false,
            "Job title, e.g. RN or Medical Assistant.",
            &["job title", "position", "job", "designation"],
        ),
        field(
            "mobilePhone",
            "Mobile phone",
            "Contact",
            None,
            false,
            "Any common notation; stored in E.164. Without a country code, North American.",
            &[
                "mobile",
                "cell",
                "cell phone",
                "mobile number",
                "phone number",
            ],
        ),
        field(
            "locale",
            "Locale",
            "Preferences",
            None,
            false,
            "Language tag such as en-US.",
            &["language", "lang"],
        ),
        field(
            "roles",
            "Roles",
            "Access",
            None,
            false,
            "Names of existing roles, separated by ;. Replaces the user's roles when given.",
            &["role", "role(s)", "user roles", "access roles"],
        ),
        field(
            "externalId",
            "External ID",
            "Identity",
            None,
            false,
            "The organisation's own identifier, e.g. an employee number.",
            &[
                "employee id",
                "employee number",
                "staff id",
                "personnel number",
            ],
        ),
        field(
            "idleTimeoutMinutes",
            "Inactivity timeout (minutes)",
            "Preferences",
            None,
            false,
            "Auto logout after this many idle minutes, 1 to 720.",
            &[
                "idle timeout",
                "inactivity timeout",
                "session timeout",
                "auto logout",
            ],
        ),
    ]
}

const PROVIDER: [FieldSpec; 10] = [
    field(
        "npi",
        "NPI",
        "Provider",
        None,
        true,
        "National Provider Identifier: 10 digits with a valid check digit, unique in the organisation.",
        &["npi number", "national provider identifier"],
    ),
    field(
        "organizationRole",
        "Organization role",
        "Provider",
        None,
        false,
        "Provider, Admin, Billing, …; Provider when absent.",
        &["organisation role", "org role", "provider role"],
    ),
    field(
        "specialty",
        "Specialty",
        "Provider",
        None,
        false,
        "Clinical specialty.",
        &["speciality", "specialization", "specialisation"],
    ),
    field(
        "addressLine1",
        "Address line 1",
        "Practice",
        Some("Address"),
        false,
        "Street and number.",
        &["address", "street", "street address", "address 1"],
    ),
    field(
        "addressLine2",
        "Address line 2",
        "Practice",
        Some("Address"),
        false,
        "Suite, floor, building.",
        &["address 2", "suite", "apt"],
    ),
    field(
        "city",
        "City",
        "Practice",
        Some("Address"),
        false,
        "City.",
        &["town"],
    ),
    field(
        "state",
        "State",
        "Practice",
        Some("Address"),
        false,
        "State or province.",
        &["province", "region"],
    ),
    field(
        "postalCode",
        "Postal code",
        "Practice",
        Some("Address"),
        false,
        "ZIP or postal code.",
        &["zip", "zip code", "postcode"],
    ),
    field(
        "phone",
        "Phone",
        "Practice",
        Some("Contact"),
        false,
        "Practice phone; stored in E.164.",
        &["telephone", "contact phone", "office phone", "work phone"],
    ),
    field(
        "billingTaxId",
        "Billing tax ID",
        "Billing",
        None,
        false,
        "EIN, 9 digits.",
        &["tax id", "ein", "tin"],
    ),
];

/// A patient of a project; the identity is the external id, else the email.
const PATIENT: [FieldSpec; 6] = [
    field(
        "firstName",
        "First name",
        "Patient",
        Some("Name"),
        true,
        "Given name.",
        &[
            "first",
            "given name",
            "forename",
            "first name",
            "patient first name",
        ],
    ),
    field(
        "lastName",
        "Last name",
        "Patient",
        Some("Name"),
        true,
        "Family name.",
        &[
            "last",
            "surname",
            "family name",
            "last name",
            "patient last name",
        ],
    ),
    field(
        "externalId",
        "External ID",
        "Patient",
        Some("Identity"),
        false,
        "The organisation's own identifier, e.g. a medical record number: the patient's identity. Give it or the email on every row.",
        &[
            "mrn",
            "medical record number",
            "patient id",
            "record number",
            "external id",
            "chart number",
        ],
    ),
    field(
        "email",
        "Email",
        "Patient",
        Some("Contact"),
        false,
        "The patient's email; their identity when there is no external id, and where email requests go.",
        &["e-mail", "email address", "e-mail address", "mail"],
    ),
    field(
        "phone",
        "Mobile phone",
        "Patient",
        Some("Contact"),
        false,
        "Where text message requests go; stored in E.164.",
        &[
            "mobile",
            "cell",
            "cell phone",
            "mobile phone",
            "telephone",
            "phone number",
        ],
    ),
    field(
        "dateOfBirth",
        "Date of birth",
        "Patient",
        None,
        false,
        "YYYY-MM-DD or MM/DD/YYYY.",
        &[
            "dob",
            "birth date",
            "date of birth",
            "birthdate",
            "birthday",
        ],
    ),
];

/// A practice location; its name is its identity.
const LOCATION: [FieldSpec; 8] = [
    field(
        "name",
        "Location name",
        "Location",
        None,
        true,
        "Unique within the organisation, whatever its case: an existing location with this name is updated.",
        &[
            "location",
            "location name",
            "site",
            "site name",
            "office",
            "clinic",
        ],
    ),
    field(
        "addressLine1",
        "Address line 1",
        "Location",
        Some("Address"),
        false,
        "Street and number.",
        &["street", "address", "street address", "address 1"],
    ),
    field(
        "addressLine2",
        "Address line 2",
        "Location",
        Some("Address"),
        false,
        "Suite, floor, building.",
        &["address 2", "suite", "unit"],
    ),
    field(
        "city",
        "City",
        "Location",
        Some("Address"),
        false,
        "",
        &["town"],
    ),
    field(
        "state",
        "State",
        "Location",
        Some("Address"),
        false,
        "",
        &["province", "region"],
    ),
    field(
        "postalCode",
        "Postal code",
        "Location",
        Some("Address"),
        false,
        "",
        &["zip", "zip code", "postcode", "postal"],
    ),
    field(
        "phone",
        "Phone",
        "Location",
        None,
        false,
        "Stored in E.164.",
        &["telephone", "phone number", "main phone"],
    ),
    field(
        "active",
        "Active",
        "Location",
        None,
        false,
        "yes or no (also true/false, 1/0); yes when absent.",
        &["is active", "status", "enabled", "open"],
    ),
];

/// The fields of `kind`, required ones first within the catalogue's order.
pub fn fields(kind: ImportKind) -> Vec<FieldSpec> {
    let mut all = match kind {
        ImportKind::Users => {
            let mut v = vec![EMAIL];
            v.extend(person(false));
            v
        }
        ImportKind::Providers => {
            let mut v = vec![EMAIL];
            v.extend(person(true));
            v.extend(PROVIDER);
            v
        }
        ImportKind::Patients => PATIENT.to_vec(),
        ImportKind::Locations => LOCATION.to_vec(),
    };
    all.sort_by_key(|f| !f.required);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_need_names_and_npi_and_users_only_email() {
        let required = |kind| -> Vec<&str> {
            fields(kind)
                .iter()
                .filter(|f| f.required)
                .map(|f| f.key)
                .collect()
        };
        assert_eq!(required(ImportKind::Users), ["email"]);
        assert_eq!(
            required(ImportKind::Providers),
            ["email", "firstName", "lastName", "npi"]
        );
    }
}
