//! People put straight into a test's database, built by the product's own
//! constructors (`UserDetails::new_user`, `PracticeDetails::new_provider`), so
//! a test's staff are the records the product would make:
//!
//! ```ignore
//! let nurse = app.person(org, "nurse@clinic.test").roles(&["Clinical Provider"]).insert().await;
//! let doctor = app.person(org, "dr@clinic.test").provider(&common::npi(7)).insert().await;
//! ```

use chrono::Utc;
use rollcall::{
    domain::{Email, Npi},
    services::{providers::PracticeDetails, users::UserDetails},
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::{PASSWORD, TestApp};

/// The hash of [`PASSWORD`], made once per test binary.
async fn password_hash() -> String {
    static HASH: OnceCell<String> = OnceCell::const_new();
    HASH.get_or_init(|| async {
        let password =
            rollcall::auth::password::Password::parse(PASSWORD, Default::default(), None, "p")
                .unwrap();
        rollcall::auth::password::Hasher::new(1)
            .hash(&password)
            .await
            .unwrap()
    })
    .await
    .clone()
}

/// A valid NPI, the `n`th of a series (its check digit computed).
pub fn npi(n: u32) -> String {
    let stem = format!("{:09}", 100_000_000 + n % 900_000_000);
    (0..10)
        .map(|digit| format!("{stem}{digit}"))
        .find(|candidate| Npi::parse(candidate, "npi").is_ok())
        .unwrap()
}

/// A person to insert: active, signing in with [`PASSWORD`] without having to
/// change it, holding no role until given some.
pub struct Person<'a> {
    app: &'a TestApp,
    organization: Uuid,
    details: UserDetails,
    roles: Vec<String>,
    password: bool,
    npi: Option<Npi>,
}

impl TestApp {
    /// A person of `organization` with this address, named Test and the
    /// address's local part.
    pub fn person(&self, organization: Uuid, email: &str) -> Person<'_> {
        let email = Email::parse(email, "email").unwrap();
        let last_name = email.as_str().split('@').next().unwrap().to_owned();
        Person {
            app: self,
            organization,
            details: UserDetails::named(email, "Test".to_owned(), last_name),
            roles: Vec::new(),
            password: true,
            npi: None,
        }
    }

    /// Create an active user holding `roles` (by name) in `organization`, with
    /// [`PASSWORD`], directly in the database; their id.
    pub async fn user(&self, organization: Uuid, email: &str, roles: &[&str]) -> Uuid {
        self.person(organization, email).roles(roles).insert().await
    }
}

impl Person<'_> {
    pub fn named(mut self, first_name: &str, last_name: &str) -> Self {
        self.details.first_name = first_name.to_owned();
        self.details.last_name = last_name.to_owned();
        self
    }

    /// The roles they hold, by name.
    pub fn roles(mut self, roles: &[&str]) -> Self {
        self.roles = roles.iter().map(|r| (*r).to_owned()).collect();
        self
    }

    /// No password: they cannot sign in with one.
    pub fn without_password(mut self) -> Self {
        self.password = false;
        self
    }

    /// A provider record with this NPI and the product's defaults.
    pub fn provider(mut self, npi: &str) -> Self {
        self.npi = Some(Npi::parse(npi, "npi").unwrap());
        self
    }

    /// Insert them, their roles and their provider record; their id.
    pub async fn insert(self) -> Uuid {
        let db = &self.app.db;
        let now = Utc::now();
        let hash = if self.password {
            Some(password_hash().await)
        } else {
            None
        };
        let mut user = self.details.new_user(self.organization, hash, now);
        user.must_change_password = false;
        let id = user.id;
        entity::user::Entity::insert(entity::user::ActiveModel::from(user))
            .exec_without_returning(db)
            .await
            .unwrap();
        if !self.roles.is_empty() {
            let held = entity::role::Entity::find()
                .filter(entity::role::Column::OrganizationId.eq(self.organization))
                .filter(entity::role::Column::Name.is_in(self.roles.clone()))
                .all(db)
                .await
                .unwrap();
            assert_eq!(held.len(), self.roles.len(), "roles {:?}", self.roles);
            entity::user_role::Entity::insert_many(held.iter().map(|role| {
                entity::user_role::ActiveModel::from(entity::user_role::Model {
                    user_id: id,
                    role_id: role.id,
                })
            }))
            .exec_without_returning(db)
            .await
            .unwrap();
        }
        if let Some(npi) = &self.npi {
            let provider = PracticeDetails::default().new_provider(self.organization, id, npi, now);
            entity::provider::Entity::insert(entity::provider::ActiveModel::from(provider))
                .exec_without_returning(db)
                .await
                .unwrap();
        }
        id
    }
}
