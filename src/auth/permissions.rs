//! The permission catalogue. Roles carry permissions; users get them through roles.

use std::collections::BTreeSet;

/// What a role allows its holders to do.
#[derive(async_graphql::Enum, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// See the organisation's staff users.
    UsersRead,
    /// Create, change, deactivate and reactivate staff users, and reset their passwords.
    UsersWrite,
    /// Create, change and delete roles, and give users their roles.
    RolesManage,
    /// See providers and their practice details.
    ProvidersRead,
    /// Create and change providers.
    ProvidersWrite,
    /// See projects and their response rates.
    ProjectsRead,
    /// Create, change and archive projects, rotate their links, send requests.
    ProjectsWrite,
    /// See patients: only those assigned to the user, unless PATIENTS_ALL is also held.
    PatientsRead,
    /// Add and change patients and enrolments.
    PatientsWrite,
    /// See every patient of the organisation.
    PatientsAll,
    /// Assign patients to oneself.
    PatientsSelfAssign,
    /// Create and change the organisation's practice locations.
    LocationsManage,
    /// Run CSV imports and manage mapping templates.
    ImportsRun,
    /// See and end other users' sessions.
    SessionsManage,
    /// Search the audit trail.
    AuditRead,
    /// Change the organisation's settings.
    OrganizationManage,
    /// In an emergency, see a patient outside one's care team (or every
    /// patient) for a bounded time, giving a reason; reviewed afterwards.
    BreakGlass,
}

impl Permission {
    pub const ALL: [Permission; 17] = [
        Self::UsersRead,
        Self::UsersWrite,
        Self::RolesManage,
        Self::ProvidersRead,
        Self::ProvidersWrite,
        Self::ProjectsRead,
        Self::ProjectsWrite,
        Self::PatientsRead,
        Self::PatientsWrite,
        Self::PatientsAll,
        Self::PatientsSelfAssign,
        Self::LocationsManage,
        Self::ImportsRun,
        Self::SessionsManage,
        Self::AuditRead,
        Self::OrganizationManage,
        Self::BreakGlass,
    ];

    /// The stored name, equal to the GraphQL enum value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UsersRead => "USERS_READ",
            Self::UsersWrite => "USERS_WRITE",
            Self::RolesManage => "ROLES_MANAGE",
            Self::ProvidersRead => "PROVIDERS_READ",
            Self::ProvidersWrite => "PROVIDERS_WRITE",
            Self::ProjectsRead => "PROJECTS_READ",
            Self::ProjectsWrite => "PROJECTS_WRITE",
            Self::PatientsRead => "PATIENTS_READ",
            Self::PatientsWrite => "PATIENTS_WRITE",
            Self::PatientsAll => "PATIENTS_ALL",
            Self::PatientsSelfAssign => "PATIENTS_SELF_ASSIGN",
            Self::LocationsManage => "LOCATIONS_MANAGE",
            Self::ImportsRun => "IMPORTS_RUN",
            Self::SessionsManage => "SESSIONS_MANAGE",
            Self::AuditRead => "AUDIT_READ",
            Self::OrganizationManage => "ORGANIZATION_MANAGE",
            Self::BreakGlass => "BREAK_GLASS",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// A sentence for the `permissions` catalogue.
    pub fn description(self) -> &'static str {
        match self {
            Self::UsersRead => "See the organisation's staff users.",
            Self::UsersWrite => {
                "Create, change, deactivate and reactivate staff users, and reset their passwords."
            }
            Self::RolesManage => "Create, change and delete roles, and give users their roles.",
            Self::ProvidersRead => "See providers and their practice details.",
            Self::ProvidersWrite => "Create and change providers.",
            Self::ProjectsRead => "See projects and their response rates.",
            Self::ProjectsWrite => {
                "Create, change and archive projects, rotate their links and send requests."
            }
            Self::PatientsRead => {
                "See patients: only those assigned to the user, unless combined with PATIENTS_ALL."
            }
            Self::PatientsWrite => "Add and change patients and enrolments.",
            Self::PatientsAll => "See every patient of the organisation.",
            Self::PatientsSelfAssign => "Assign patients to oneself.",
            Self::LocationsManage => "Create and change the organisation's practice locations.",
            Self::ImportsRun => "Run CSV imports and manage mapping templates.",
            Self::SessionsManage => "See and end other users' sessions.",
            Self::AuditRead => "Search the audit trail.",
            Self::OrganizationManage => "Change the organisation's settings.",
            Self::BreakGlass => {
                "In an emergency, see a patient outside one's care team, or every patient, for a bounded time with a reason; every such access is reviewed."
            }
        }
    }
}

/// The built-in roles every organisation starts with, and their permissions.
pub fn built_in_roles() -> Vec<(&'static str, &'static str, BTreeSet<Permission>)> {
    use Permission::*;
    let set = |ps: &[Permission]| ps.iter().copied().collect::<BTreeSet<_>>();
    vec![
        (
            "All Access",
            "Every permission.",
            Permission::ALL.into_iter().collect(),
        ),
        (
            "Admin",
            "Runs the organisation: staff, roles, providers, projects, imports, sessions, audit.",
            Permission::ALL.into_iter().collect(),
        ),
        (
            "Clinical Manager",
            "Manages clinical staff, providers, projects and all patients.",
            set(&[
                UsersRead,
                ProvidersRead,
                ProvidersWrite,
                ProjectsRead,
                ProjectsWrite,
                PatientsRead,
                PatientsWrite,
                PatientsAll,
                LocationsManage,
            ]),
        ),
        (
            "Clinical Provider",
            "Sees providers and projects, and cares for assigned patients; may break the glass in an emergency.",
            set(&[
                ProvidersRead,
                ProjectsRead,
                PatientsRead,
                PatientsWrite,
                PatientsSelfAssign,
                BreakGlass,
            ]),
        ),
        (
            "Patient Coordinator",
            "Enrols patients in projects and follows up on requests.",
            set(&[
                ProjectsRead,
                PatientsRead,
                PatientsWrite,
                PatientsAll,
                ImportsRun,
            ]),
        ),
        (
            "Medical Director",
            "Oversees providers, projects and all patients; reads the audit trail.",
            set(&[
                UsersRead,
                ProvidersRead,
                ProjectsRead,
                PatientsRead,
                PatientsAll,
                AuditRead,
            ]),
        ),
        (
            "Provider",
            "A provider logging in from the mobile portal: assigned patients only.",
            set(&[ProjectsRead, PatientsRead, PatientsSelfAssign]),
        ),
        (
            "Billing",
            "Sees providers' billing details.",
            set(&[ProvidersRead, UsersRead]),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
        }
        assert_eq!(Permission::parse("EVERYTHING"), None);
    }

    #[test]
    fn admin_roles_can_manage_users_and_roles() {
        let roles = built_in_roles();
        for name in ["All Access", "Admin"] {
            let (_, _, perms) = roles.iter().find(|(n, _, _)| *n == name).expect("role");
            assert!(
                perms.contains(&Permission::UsersWrite) && perms.contains(&Permission::RolesManage)
            );
        }
    }
}
