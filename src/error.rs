//! The one error type every layer returns, and what each variant shows the client.
//!
//! - Services and the auth layer return [`AppError`]; its variants say what the
//!   client sees (`extensions.code`), not where the error came from.
//! - Resolvers use `?` on `AppError`; the `From<AppError> for async_graphql::Error`
//!   conversion is the only way into a GraphQL error. async-graphql's
//!   `custom-error-conversion` feature removes its blanket `From<Display>`, so a
//!   database error cannot reach a client by accident.
//! - An `Internal` error is logged once, here, with a correlation id that the client
//!   also receives; its cause never leaves the server.

use async_graphql::ErrorExtensions;
use serde::{Deserialize, Serialize};

pub type AppResult<T> = Result<T, AppError>;

/// One invalid input field: which, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Collects the field errors of an input so that the client learns every wrong
/// field at once, not one per attempt.
#[derive(Debug, Default)]
pub struct Validation(Vec<FieldError>);

impl Validation {
    /// The value if `result` holds one; otherwise remember its field errors.
    pub fn check<T>(&mut self, result: AppResult<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(AppError::BadInput(fields)) => {
                self.0.extend(fields);
                None
            }
            Err(other) => {
                self.0.push(FieldError::new("input", other.to_string()));
                None
            }
        }
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// The field errors collected so far.
    pub fn into_errors(self) -> Vec<FieldError> {
        self.0
    }

    /// `BAD_USER_INPUT` with every field error collected, if any.
    pub fn finish(self) -> AppResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(AppError::BadInput(self.0))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("You are not logged in, or your session has ended.")]
    Unauthenticated,
    #[error("Invalid email or password.")]
    InvalidCredentials,
    #[error("{0}")]
    Forbidden(String),
    #[error("{}", bad_input_message(.0))]
    BadInput(Vec<FieldError>),
    #[error("{0} not found.")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("You must change your password before doing anything else.")]
    PasswordChangeRequired,
    /// A login waiting for its second factor asked for anything else, or a
    /// sensitive operation came without a recent second factor.
    #[error("Verify your second factor first (verifyMfa or finishWebAuthnLogin).")]
    MfaRequired,
    #[error("Your organisation requires a second factor: enrol one before doing anything else.")]
    MfaEnrollmentRequired,
    #[error("Your organisation signs you in through its identity provider: use single sign-on.")]
    SsoRequired,
    #[error("Too many attempts; try again in {retry_after_seconds} seconds.")]
    RateLimited { retry_after_seconds: u64 },
    #[error("The {0} is unavailable; try again shortly.")]
    Unavailable(&'static str),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn bad_input_message(fields: &[FieldError]) -> String {
    match fields {
        [one] => format!("{}: {}", one.field, one.message),
        _ => format!("{} fields are invalid.", fields.len()),
    }
}

impl AppError {
    /// A single invalid field.
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadInput(vec![FieldError::new(field, message)])
    }

    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self::Forbidden(reason.into())
    }

    /// The `extensions.code` a client sees.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated | Self::InvalidCredentials => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::BadInput(_) => "BAD_USER_INPUT",
            Self::NotFound(_) => "NOT_FOUND",
            Self::Conflict(_) => "CONFLICT",
            Self::PasswordChangeRequired => "PASSWORD_CHANGE_REQUIRED",
            Self::MfaRequired => "MFA_REQUIRED",
            Self::MfaEnrollmentRequired => "MFA_ENROLLMENT_REQUIRED",
            Self::SsoRequired => "SSO_REQUIRED",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::Unavailable(_) => "SERVICE_UNAVAILABLE",
            Self::Internal(_) => "INTERNAL",
        }
    }
}

impl AppError {
    /// The HTTP status of a response that carries this error alone (a
    /// download, a refused request); GraphQL responses choose theirs by the
    /// GraphQL over HTTP specification.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Unauthenticated | Self::InvalidCredentials => 401,
            Self::Forbidden(_)
            | Self::PasswordChangeRequired
            | Self::MfaRequired
            | Self::MfaEnrollmentRequired
            | Self::SsoRequired => 403,
            Self::BadInput(_) => 400,
            Self::NotFound(_) => 404,
            Self::Conflict(_) => 409,
            Self::RateLimited { .. } => 429,
            Self::Unavailable(_) => 503,
            Self::Internal(_) => 500,
        }
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        if is_outage(&err) {
            tracing::warn!(error = %err, "database unavailable");
            Self::Unavailable("database")
        } else {
            Self::Internal(err.into())
        }
    }
}

/// Whether a database error means the database is unreachable (a pool that
/// cannot hand out a connection, a server that went away or is shutting down,
/// a statement timeout) rather than a bug: the client should retry later.
pub fn is_outage(err: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr, sqlx};
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Query(RuntimeErr::SqlxError(cause)) | DbErr::Exec(RuntimeErr::SqlxError(cause)) => {
            match cause.as_ref() {
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                // 08: connection exception; 57: operator intervention (shutdown,
                // crash recovery, statement timeout); 53300: too many connections.
                sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                    code.starts_with("08") || code.starts_with("57") || code == "53300"
                }),
                _ => false,
            }
        }
        _ => false,
    }
}

/// Turn a unique-constraint violation into the error the client should see; any
/// other database error passes through. Checks before inserts give the friendly
/// error in the common case; this covers the race between two requests.
pub trait OnConstraint<T> {
    fn on_unique_violation(self, err: impl FnOnce() -> AppError) -> AppResult<T>;
}

impl<T> OnConstraint<T> for Result<T, sea_orm::DbErr> {
    fn on_unique_violation(self, err: impl FnOnce() -> AppError) -> AppResult<T> {
        self.map_err(|db| match db.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => err(),
            _ => db.into(),
        })
    }
}

impl From<sea_orm::TransactionError<AppError>> for AppError {
    fn from(err: sea_orm::TransactionError<AppError>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(app) => app,
        }
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        let code = err.code();
        match err {
            AppError::Internal(cause) => {
                let reference = uuid::Uuid::new_v4();
                tracing::error!(%reference, error = ?cause, "internal error");
                async_graphql::Error::new(format!(
                    "Something went wrong on our side (reference {reference})."
                ))
                .extend_with(|_, ext| {
                    ext.set("code", code);
                    ext.set("reference", reference.to_string());
                })
            }
            AppError::BadInput(ref fields) => {
                let list: Vec<async_graphql::Value> = fields
                    .iter()
                    .map(|f| {
                        let mut map = async_graphql::indexmap::IndexMap::new();
                        map.insert(
                            async_graphql::Name::new("field"),
                            async_graphql::Value::from(f.field.clone()),
                        );
                        map.insert(
                            async_graphql::Name::new("message"),
                            async_graphql::Value::from(f.message.clone()),
                        );
                        async_graphql::Value::Object(map)
                    })
                    .collect();
                async_graphql::Error::new(err.to_string()).extend_with(|_, ext| {
                    ext.set("code", code);
                    ext.set("fields", list);
                })
            }
            AppError::RateLimited {
                retry_after_seconds,
            } => async_graphql::Error::new(err.to_string()).extend_with(|_, ext| {
                ext.set("code", code);
                ext.set("retryAfterSeconds", retry_after_seconds);
            }),
            other => async_graphql::Error::new(other.to_string())
                .extend_with(|_, ext| ext.set("code", code)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extension(err: &async_graphql::Error, key: &str) -> Option<async_graphql::Value> {
        err.extensions.as_ref().and_then(|e| e.get(key).cloned())
    }

    #[test]
    fn every_variant_carries_its_code() {
        let cases = [
            (AppError::Unauthenticated, "UNAUTHENTICATED"),
            (AppError::InvalidCredentials, "UNAUTHENTICATED"),
            (AppError::forbidden("no"), "FORBIDDEN"),
            (AppError::bad_input("email", "bad"), "BAD_USER_INPUT"),
            (AppError::NotFound("User"), "NOT_FOUND"),
            (AppError::Conflict("taken".into()), "CONFLICT"),
            (AppError::PasswordChangeRequired, "PASSWORD_CHANGE_REQUIRED"),
            (
                AppError::RateLimited {
                    retry_after_seconds: 3,
                },
                "RATE_LIMITED",
            ),
            (AppError::Unavailable("database"), "SERVICE_UNAVAILABLE"),
            (AppError::Internal(anyhow::anyhow!("boom")), "INTERNAL"),
        ];
        for (err, code) in cases {
            let gql: async_graphql::Error = err.into();
            assert_eq!(extension(&gql, "code"), Some(code.into()), "{gql:?}");
        }
    }

    #[test]
    fn every_code_has_one_http_status() {
        let cases = [
            (AppError::Unauthenticated, 401),
            (AppError::forbidden("no"), 403),
            (AppError::PasswordChangeRequired, 403),
            (AppError::bad_input("email", "bad"), 400),
            (AppError::NotFound("User"), 404),
            (AppError::Conflict("taken".into()), 409),
            (
                AppError::RateLimited {
                    retry_after_seconds: 3,
                },
                429,
            ),
            (AppError::Unavailable("database"), 503),
            (AppError::Internal(anyhow::anyhow!("boom")), 500),
        ];
        for (err, status) in cases {
            assert_eq!(err.http_status(), status, "{err:?}");
        }
    }

    #[test]
    fn a_lost_database_is_an_outage_and_a_bad_statement_is_not() {
        use std::sync::Arc;

        use sea_orm::{DbErr, RuntimeErr, sqlx};
        let sqlx_err = |e: sqlx::Error| RuntimeErr::SqlxError(Arc::new(e));
        let io = || {
            sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "reset",
            ))
        };
        for outage in [
            DbErr::Query(sqlx_err(io())),
            DbErr::Exec(sqlx_err(io())),
            DbErr::Query(sqlx_err(sqlx::Error::PoolTimedOut)),
            DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout),
        ] {
            assert!(is_outage(&outage), "{outage:?}");
            assert_eq!(AppError::from(outage).code(), "SERVICE_UNAVAILABLE");
        }
        for bug in [
            DbErr::Query(sqlx_err(sqlx::Error::RowNotFound)),
            DbErr::Query(sqlx_err(sqlx::Error::ColumnNotFound("x".into()))),
            DbErr::Custom("boom".into()),
        ] {
            assert!(!is_outage(&bug), "{bug:?}");
            assert_eq!(AppError::from(bug).code(), "INTERNAL");
        }
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let gql: async_graphql::Error =
            AppError::Internal(anyhow::anyhow!("relation \"users\" does not exist")).into();
        assert!(!gql.message.contains("users"), "{}", gql.message);
        assert!(extension(&gql, "reference").is_some());
    }

    #[test]
    fn bad_input_names_each_field() {
        let gql: async_graphql::Error = AppError::BadInput(vec![
            FieldError::new("email", "is not an email address"),
            FieldError::new("firstName", "is required"),
        ])
        .into();
        let Some(async_graphql::Value::List(fields)) = extension(&gql, "fields") else {
            panic!("no fields: {gql:?}");
        };
        assert_eq!(fields.len(), 2);
        assert_eq!(gql.message, "2 fields are invalid.");
    }
}
