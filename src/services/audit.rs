//! The append-only audit trail: written in the same transaction as the change it
//! records, never updated, never deleted.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::{self, Set},
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
};
use uuid::Uuid;

use super::{Page, PageRequest, paginate};
use crate::{
    auth::{Actor, Permission, actor::Origin, session::SessionId},
    error::AppResult,
};

/// One event to record.
#[derive(Clone, Debug, Default)]
pub struct AuditEntry {
    pub organization_id: Option<Uuid>,
    pub actor_user_id: Option<Uuid>,
    pub session_id: Option<String>,
    pub action: &'static str,
    pub target_type: Option<&'static str>,
    pub target_id: Option<String>,
    /// Changed fields; never secrets.
    pub changes: Option<serde_json::Value>,
    pub origin: Origin,
}

impl AuditEntry {
    /// An event done by `actor` in their organisation.
    pub fn by(actor: &Actor, action: &'static str) -> Self {
        Self {
            organization_id: Some(actor.organization_id),
            actor_user_id: Some(actor.user_id),
            session_id: actor.session().ok().map(|id| id.0.clone()),
            action,
            origin: actor.origin.clone(),
            ..Self::default()
        }
    }

    /// An event done by `user` through the session `session_id` as it opens,
    /// before any request has made them an actor.
    pub fn by_opening_session(
        user: &entity::user::Model,
        session_id: &SessionId,
        action: &'static str,
        origin: Origin,
    ) -> Self {
        Self {
            organization_id: Some(user.organization_id),
            actor_user_id: Some(user.id),
            session_id: Some(session_id.0.clone()),
            action,
            origin,
            ..Self::default()
        }
        .target("User", user.id)
    }

    pub fn target(mut self, target_type: &'static str, id: impl ToString) -> Self {
        self.target_type = Some(target_type);
        self.target_id = Some(id.to_string());
        self
    }

    pub fn target_opt(self, target_type: &'static str, id: Option<impl ToString>) -> Self {
        match id {
            Some(id) => self.target(target_type, id),
            None => self,
        }
    }

    pub fn changes(mut self, changes: serde_json::Value) -> Self {
        self.changes = Some(changes);
        self
    }
}

/// The fields an update sets, noted for its audit event as they are applied, so
/// that what is recorded is what was written.
#[derive(Default)]
pub struct Changes(serde_json::Map<String, serde_json::Value>);

impl Changes {
    /// Set `column` to `value`, noted under the client's name for the field.
    pub fn set<V>(&mut self, key: &str, column: &mut ActiveValue<V>, value: V)
    where
        V: Into<sea_orm::Value> + serde::Serialize,
    {
        self.0.insert(key.to_owned(), serde_json::json!(&value));
        *column = Set(value);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What the audit event records.
    pub fn into_json(self) -> serde_json::Value {
        serde_json::Value::Object(self.0)
    }
}

pub async fn record(db: &impl ConnectionTrait, entry: AuditEntry) -> AppResult<()> {
    let truncate =
        |s: Option<String>, max: usize| s.map(|s| s.chars().take(max).collect::<String>());
    let event = entity::audit_event::Model {
        id: Uuid::now_v7(),
        organization_id: entry.organization_id,
        actor_user_id: entry.actor_user_id,
        session_id: entry.session_id,
        action: entry.action.to_owned(),
        target_type: entry.target_type.map(str::to_owned),
        target_id: entry.target_id,
        changes: entry.changes,
        ip_address: truncate(entry.origin.ip_address, 64),
        user_agent: truncate(entry.origin.user_agent, 512),
        created_at: Utc::now(),
    };
    entity::audit_event::Entity::insert(entity::audit_event::ActiveModel::from(event.clone()))
        .exec_without_returning(db)
        .await?;
    // Every audited change is an event the organisation's webhooks may want.
    super::webhooks::fan_out(db, &event).await
}

/// What `auditEvents` may be narrowed by.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub actor_id: Option<Uuid>,
    pub action: Option<String>,
    pub target_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

pub async fn search(
    db: &impl ConnectionTrait,
    actor: &Actor,
    filter: AuditFilter,
    page: PageRequest,
) -> AppResult<Page<entity::audit_event::Model>> {
    use entity::audit_event::{Column, Entity};
    actor.require(Permission::AuditRead)?;
    let mut select = actor.scope::<Entity>();
    if let Some(actor_id) = filter.actor_id {
        select = select.filter(Column::ActorUserId.eq(actor_id));
    }
    if let Some(action) = filter.action {
        select = select.filter(Column::Action.eq(action));
    }
    if let Some(target) = filter.target_id {
        select = select.filter(Column::TargetId.eq(target));
    }
    if let Some(from) = filter.from {
        select = select.filter(Column::CreatedAt.gte(from));
    }
    if let Some(to) = filter.to {
        select = select.filter(Column::CreatedAt.lt(to));
    }
    paginate(db, select, Column::Id, page).await
}

#[cfg(test)]
mod tests {
    use sea_orm::ActiveValue::{NotSet, Set};

    use super::Changes;

    #[test]
    fn a_change_is_written_and_recorded_alike() {
        let mut title = NotSet;
        let mut phone = NotSet;
        let mut changes = Changes::default();
        assert!(changes.is_empty());
        changes.set("title", &mut title, Some("Charge Nurse".to_owned()));
        changes.set("mobilePhone", &mut phone, None::<String>);
        assert_eq!(title, Set(Some("Charge Nurse".to_owned())));
        assert_eq!(phone, Set(None));
        assert_eq!(
            changes.into_json(),
            serde_json::json!({ "title": "Charge Nurse", "mobilePhone": null })
        );
    }
}
