//! The events webhooks may ask for, and their fan-out: what `audit::record`
//! calls, in the transaction of the change, to queue one outbox message per
//! subscribed webhook (see `webhooks` for the rest).

use sea_orm::{ColumnTrait, ConnectionTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;

use super::outbox::{self, WEBHOOK};
use crate::{db::Scope, error::AppResult};

/// The events a webhook may ask for by name, the audit actions each stands
/// for, and what it means. `*` asks for every event, each under its own
/// name or, when none of these, its audit action.
pub const EVENTS: &[(&str, &[&str], &str)] = &[
    (
        "user.created",
        &["user.create", "user.create_super_admin", "user.reprovision"],
        "a staff user was created (or provisioned again)",
    ),
    (
        "user.updated",
        &["user.update", "user.profile_update"],
        "a user's details changed",
    ),
    (
        "user.deactivated",
        &["user.deactivate", "user.deprovision"],
        "a user was deactivated or deprovisioned",
    ),
    (
        "user.reactivated",
        &["user.reactivate"],
        "a user may log in again",
    ),
    (
        "user.password_changed",
        &["user.change_password", "user.reset_password"],
        "a user's password changed",
    ),
    (
        "user.mfa_reset",
        &["user.reset_mfa"],
        "a user's second factors were removed",
    ),
    (
        "role.changed",
        &[
            "role.create",
            "role.update",
            "role.delete",
            "user.set_roles",
        ],
        "a role, or the roles a user holds, changed",
    ),
    (
        "session.revoked",
        &[
            "session.revoke",
            "session.revoke_user",
            "sso.backchannel_logout",
        ],
        "sessions were ended",
    ),
    ("import.finished", &["import.finish"], "an import job ended"),
    (
        "enrollment.responded",
        &["project.patient_respond"],
        "a patient answered a project's request",
    ),
    (
        "api_client.changed",
        &["api_client.create", "api_client.revoke"],
        "an API client was created or revoked",
    ),
    (
        "organization.updated",
        &[
            "organization.update",
            "sso.provider_saved",
            "sso.provider_deleted",
        ],
        "the organisation's settings or identity providers changed",
    ),
    (
        "break_glass.started",
        &["break_glass.start"],
        "someone used emergency access to patients outside their care team",
    ),
    (
        "webhook.changed",
        &["webhook.save", "webhook.delete"],
        "a webhook was saved or deleted",
    ),
];

/// The event an audit action is delivered as.
pub fn event_type(action: &str) -> &str {
    EVENTS
        .iter()
        .find(|(_, actions, _)| actions.contains(&action))
        .map_or(action, |(name, _, _)| name)
}

/// The outbox's `kind` is a `&'static str`: the event's name from the
/// catalogue, or `webhook.event` for an audit action outside it.
pub(super) fn event_kind(event: &str) -> &'static str {
    EVENTS
        .iter()
        .find(|(name, _, _)| *name == event)
        .map_or("webhook.event", |(name, _, _)| name)
}

/// Queue the deliveries of an audited event to the organisation's webhooks
/// that asked for it, in the caller's transaction.
pub async fn fan_out(
    db: &impl ConnectionTrait,
    event: &entity::audit_event::Model,
) -> AppResult<()> {
    let Some(organization_id) = event.organization_id else {
        return Ok(());
    };
    let event_type = event_type(&event.action);
    let subscribed: Vec<entity::webhook::Model> = Scope::of(organization_id)
        .find::<entity::webhook::Entity>()
        .filter(entity::webhook::Column::Active.eq(true))
        .all(db)
        .await?
        .into_iter()
        .filter(|w| w.events.split(',').any(|e| e == "*" || e == event_type))
        .collect();
    if subscribed.is_empty() {
        return Ok(());
    }
    let payload = json!({
        "type": event_type,
        "timestamp": event.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": {
            "organizationId": organization_id,
            "action": event.action,
            "auditEventId": event.id,
            "actorId": event.actor_user_id,
            "targetType": event.target_type,
            "targetId": event.target_id,
        },
    })
    .to_string();
    for webhook in subscribed {
        outbox::enqueue(
            db,
            outbox::NewMessage {
                organization_id: Some(organization_id),
                kind: event_kind(event_type),
                channel: WEBHOOK,
                to: webhook.id.to_string(),
                // The stable `webhook-id`: one per event and webhook.
                subject: format!("msg_{}", Uuid::now_v7().simple()),
                body: payload.clone(),
            },
        )
        .await?;
    }
    Ok(())
}
