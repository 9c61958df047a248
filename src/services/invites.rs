//! One-time links that set a password: an invite lets a user without a password
//! set their first one (valid 72 hours), a password reset lets a user who forgot
//! theirs choose a new one (valid one hour). Each is usable once, a new one
//! closes the user's earlier open links, and only a digest of the token is stored.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{Duration, Utc};
use rand::TryRngCore;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, LockType},
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::outbox::{self, NewEmail};
use crate::db::{Scope, unscoped};
use crate::{
    domain::Email,
    error::{AppError, AppResult},
};

/// What a one-time link is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A first password, for a user an admin or an import created.
    Invite,
    /// A new password in place of a forgotten one; redeeming it ends every
    /// session of the user.
    PasswordReset,
}

impl Purpose {
    /// How long a link of this purpose stays valid: an invite waits for a new
    /// colleague's first day, a reset is asked for by someone at the sign-in page.
    pub fn validity(self) -> Duration {
        match self {
            Self::Invite => Duration::hours(72),
            Self::PasswordReset => Duration::hours(1),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Invite => "INVITE",
            Self::PasswordReset => "PASSWORD_RESET",
        }
    }

    /// The purpose of a stored link.
    pub fn of(invite: &entity::invite::Model) -> Self {
        if invite.purpose == Self::PasswordReset.as_str() {
            Self::PasswordReset
        } else {
            Self::Invite
        }
    }

    /// The path under the public URL where a link of this purpose opens.
    fn path(self) -> &'static str {
        match self {
            Self::Invite => "invite",
            Self::PasswordReset => "reset-password",
        }
    }
}

/// Create an invite for `user` in the caller's transaction, queue its email, and
/// return the link (shown once to the admin who created the user).
pub async fn issue(
    db: &impl ConnectionTrait,
    created_by: Option<Uuid>,
    user: &entity::user::Model,
    organization_name: &str,
    public_url: &str,
) -> AppResult<String> {
    let link = create(db, created_by, user, Purpose::Invite, public_url).await?;
    let to = Email::parse(&user.email, "email")?;
    outbox::enqueue_email(
        db,
        NewEmail {
            organization_id: Some(user.organization_id),
            kind: "user.invite",
            to: &to,
            subject: format!("You are invited to {organization_name} on Rollcall"),
            body: format!(
                "Hello {first},\n\n{organization_name} has given you a Rollcall account ({email}).\n\
                 Set your password here within 72 hours:\n\n{link}\n\n\
                 The link works once. If you did not expect this, ignore this message.\n",
                first = user.first_name,
                email = user.email,
            ),
        },
    )
    .await?;
    Ok(link)
}

/// Create a password-reset link for `user` in the caller's transaction and queue
/// the email that carries it. The link goes to the account's address only: it
/// is never returned to whoever asked for it.
pub async fn issue_reset(
    db: &impl ConnectionTrait,
    user: &entity::user::Model,
    public_url: &str,
) -> AppResult<()> {
    let link = create(db, None, user, Purpose::PasswordReset, public_url).await?;
    let to = Email::parse(&user.email, "email")?;
    outbox::enqueue_email(
        db,
        NewEmail {
            organization_id: Some(user.organization_id),
            kind: "user.password_reset",
            to: &to,
            subject: "Reset your Rollcall password".to_owned(),
            body: format!(
                "Hello {first},\n\nSomeone, probably you, asked to reset the password of your \
                 Rollcall account ({email}).\nChoose a new one here within an hour:\n\n{link}\n\n\
                 The link works once, and signs you out everywhere else. If you did not ask \
                 for this, ignore this message: your password stays as it is.\n",
                first = user.first_name,
                email = user.email,
            ),
        },
    )
    .await?;
    Ok(())
}

/// Store a new link of `purpose` for `user`, closing their earlier open ones;
/// the link itself, which only its email carries from here.
async fn create(
    db: &impl ConnectionTrait,
    created_by: Option<Uuid>,
    user: &entity::user::Model,
    purpose: Purpose,
    public_url: &str,
) -> AppResult<String> {
    if db.get_database_backend() == DbBackend::Postgres {
        // Two links made at once must not both stay open: each takes the user's
        // row first, so the later one closes the earlier. (A SQLite write
        // transaction holds the whole database already.)
        Scope::of(user.organization_id)
            .find_by_id::<entity::user::Entity>(user.id)
            .select_only()
            .column(entity::user::Column::Id)
            .lock(LockType::Update)
            .into_tuple::<Uuid>()
            .one(db)
            .await?;
    }
    let token = new_token();
    let now = Utc::now();
    revoke_open(db, user.id).await?;
    entity::invite::Entity::insert(entity::invite::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user.id),
        token_hash: Set(digest(&token)),
        expires_at: Set(now + purpose.validity()),
        used_at: Set(None),
        created_by: Set(created_by),
        created_at: Set(now),
        purpose: Set(purpose.as_str().to_owned()),
    })
    .exec_without_returning(db)
    .await?;
    Ok(format!("{public_url}/{}/{token}", purpose.path()))
}

/// The open link a token redeems, with its user; a bad, used or expired token is
/// a bad input that says only that (it never tells which).
pub async fn find_open(
    db: &impl ConnectionTrait,
    token: &str,
) -> AppResult<(entity::invite::Model, entity::user::Model)> {
    let invalid = || {
        AppError::bad_input(
            "token",
            "this link is invalid, used or expired; ask for a new one",
        )
    };
    let token = token.trim();
    if token.len() != 43 {
        return Err(invalid());
    }
    let (invite, user) = unscoped::find::<entity::invite::Entity>()
        .filter(entity::invite::Column::TokenHash.eq(digest(token)))
        .find_also_related(entity::user::Entity)
        .one(db)
        .await?
        .ok_or_else(invalid)?;
    let user = user.ok_or_else(invalid)?;
    if invite.used_at.is_some() || invite.expires_at <= Utc::now() || user.status != "ACTIVE" {
        return Err(invalid());
    }
    Ok((invite, user))
}

/// Mark a link used, once: whether this call was the one that used it.
pub async fn redeem(db: &impl ConnectionTrait, invite_id: Uuid) -> AppResult<bool> {
    let result = unscoped::update_many::<entity::invite::Entity>()
        .col_expr(entity::invite::Column::UsedAt, Expr::value(Utc::now()))
        .filter(entity::invite::Column::Id.eq(invite_id))
        .filter(entity::invite::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Close every open link of a user (a password was set or reset another way).
pub async fn revoke_open(db: &impl ConnectionTrait, user_id: Uuid) -> AppResult<()> {
    unscoped::update_many::<entity::invite::Entity>()
        .col_expr(entity::invite::Column::UsedAt, Expr::value(Utc::now()))
        .filter(entity::invite::Column::UserId.eq(user_id))
        .filter(entity::invite::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// 256 bits from the operating system's generator, URL-safe.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random generator failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
