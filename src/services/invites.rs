//! One-time invites: a user without a password receives a link, valid 72 hours and
//! usable once, to set their first password. Only a digest of the token is stored.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{Duration, Utc};
use rand::TryRngCore;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, sea_query::Expr,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::outbox::{self, NewEmail};
use crate::{
    domain::Email,
    error::{AppError, AppResult},
};

/// How long an invite link stays valid.
pub const VALIDITY: Duration = Duration::hours(72);

/// Create an invite for `user` in the caller's transaction, queue its email, and
/// return the link (shown once to the admin who created the user).
pub async fn issue(
    db: &impl ConnectionTrait,
    created_by: Option<Uuid>,
    user: &entity::user::Model,
    organization_name: &str,
    public_url: &str,
) -> AppResult<String> {
    let token = new_token();
    let now = Utc::now();
    // A new invite replaces any earlier one that is still open.
    revoke_open(db, user.id).await?;
    entity::invite::Entity::insert(entity::invite::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user.id),
        token_hash: Set(digest(&token)),
        expires_at: Set(now + VALIDITY),
        used_at: Set(None),
        created_by: Set(created_by),
        created_at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    let link = format!("{public_url}/invite/{token}");
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

/// The open invite a token redeems, with its user; a bad, used or expired token is
/// a bad input that says only that (it never tells which).
pub async fn find_open(
    db: &impl ConnectionTrait,
    token: &str,
) -> AppResult<(entity::invite::Model, entity::user::Model)> {
    let invalid = || {
        AppError::bad_input(
            "token",
            "this invite link is invalid, used or expired; ask your administrator for a new one",
        )
    };
    let token = token.trim();
    if token.len() != 43 {
        return Err(invalid());
    }
    let (invite, user) = entity::invite::Entity::find()
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

/// Mark an invite used, once: whether this call was the one that used it.
pub async fn redeem(db: &impl ConnectionTrait, invite_id: Uuid) -> AppResult<bool> {
    let result = entity::invite::Entity::update_many()
        .col_expr(entity::invite::Column::UsedAt, Expr::value(Utc::now()))
        .filter(entity::invite::Column::Id.eq(invite_id))
        .filter(entity::invite::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Close every open invite of a user (a password was set or reset another way).
pub async fn revoke_open(db: &impl ConnectionTrait, user_id: Uuid) -> AppResult<()> {
    entity::invite::Entity::update_many()
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
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
