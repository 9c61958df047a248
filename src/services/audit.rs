//! The append-only audit trail: written in the same transaction as the change it
//! records, never updated, never deleted.

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{
    ActiveValue::{self, Set},
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionSession, TransactionTrait,
    sea_query::{Expr, OnConflict},
};
use uuid::Uuid;

use crate::db::{Page, PageRequest, Scope, global, paginate, unscoped};
use crate::{
    auth::{Actor, Permission, actor::Origin, session::SessionId},
    error::{AppError, AppResult},
};

/// The audit action of each call an API client makes.
pub const CLIENT_CALL: &str = "api_client.call";

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
    /// The emergency access the actor held: every event made under it says so
    /// (`breakGlassGrantId` in its changes), for the grant's reviewer.
    pub break_glass_grant: Option<Uuid>,
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
            break_glass_grant: actor.emergency_access().map(|access| access.grant_id),
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

    /// [`Changes::set`] when `value` is not `current`, the record's value now.
    pub fn set_if_changed<V>(
        &mut self,
        key: &str,
        column: &mut ActiveValue<V>,
        current: &V,
        value: V,
    ) where
        V: Into<sea_orm::Value> + serde::Serialize + PartialEq,
    {
        if value != *current {
            self.set(key, column, value);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What the audit event records.
    pub fn into_json(self) -> serde_json::Value {
        serde_json::Value::Object(self.0)
    }
}

/// Record `entry` in the transaction of the change it records (`db`), sealed
/// into its organisation's hash chain.
///
/// The chain's head row is locked until the transaction ends (an upsert that
/// touches it), so the events of one organisation are chained one after
/// another, from any number of instances, and a rolled-back change leaves
/// no event and no gap. The event is written in a transaction of its own
/// within `db`'s (a savepoint), so that it is whole even when `db` is not a
/// transaction.
pub async fn record<C>(db: &C, entry: AuditEntry) -> AppResult<()>
where
    C: ConnectionTrait + TransactionTrait,
{
    use entity::audit_chain::{ActiveModel, Column, Entity};
    let txn = db.begin().await?;
    let truncate =
        |s: Option<String>, max: usize| s.map(|s| s.chars().take(max).collect::<String>());
    let chain_id = entry.organization_id.unwrap_or(NO_ORGANIZATION);
    let head = Entity::insert(ActiveModel {
        chain_id: Set(chain_id),
        seq: Set(0),
        hash: Set(String::new()),
    })
    .on_conflict(
        OnConflict::column(Column::ChainId)
            .update_column(Column::ChainId)
            .to_owned(),
    )
    .exec_with_returning(&txn)
    .await?;
    let changes = match (entry.changes, entry.break_glass_grant) {
        (changes, None) => changes,
        (Some(serde_json::Value::Object(mut map)), Some(grant)) => {
            map.insert(BREAK_GLASS_MARK.to_owned(), serde_json::json!(grant));
            Some(serde_json::Value::Object(map))
        }
        (Some(other), Some(grant)) => {
            Some(serde_json::json!({ "value": other, BREAK_GLASS_MARK: grant }))
        }
        (None, Some(grant)) => Some(serde_json::json!({ BREAK_GLASS_MARK: grant })),
    };
    let mut event = entity::audit_event::Model {
        id: Uuid::now_v7(),
        organization_id: entry.organization_id,
        actor_user_id: entry.actor_user_id,
        session_id: entry.session_id,
        action: entry.action.to_owned(),
        target_type: entry.target_type.map(str::to_owned),
        target_id: entry.target_id,
        changes,
        ip_address: truncate(entry.origin.ip_address, 64),
        user_agent: truncate(entry.origin.user_agent, 512),
        // What every database keeps of a time: microseconds.
        created_at: Utc::now().trunc_subsecs(6),
        seq: Some(head.seq + 1),
        hash: None,
        previous_hash: (head.seq > 0).then_some(head.hash),
    };
    let hash = entity::audit_event::chain_hash(&event);
    event.hash = Some(hash.clone());
    unscoped::update_many::<Entity>()
        .col_expr(Column::Seq, Expr::value(head.seq + 1))
        .col_expr(Column::Hash, Expr::value(hash))
        .filter(Column::ChainId.eq(chain_id))
        .exec(&txn)
        .await?;
    entity::audit_event::Entity::insert(entity::audit_event::ActiveModel::from(event.clone()))
        .exec_without_returning(&txn)
        .await?;
    // Every audited change is an event the organisation's webhooks may want.
    // A client's call is a read as often as not; what it changed is an
    // event of its own.
    if event.action != CLIENT_CALL {
        super::webhook_events::fan_out(&txn, &event).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// The key in an event's changes that names the emergency access it was
/// made under.
pub const BREAK_GLASS_MARK: &str = "breakGlassGrantId";

/// The chain of events of no organisation (a super admin's, a failed login
/// of an unknown address) is kept under this id.
pub const NO_ORGANIZATION: Uuid = Uuid::nil();

/// What `rollcall audit verify` found of one chain.
#[derive(Debug)]
pub struct ChainReport {
    /// The organisation's id, or the nil id for events of no organisation.
    pub chain_id: Uuid,
    /// The organisation's name and id, for a person to read.
    pub name: String,
    /// How many events were checked.
    pub events: u64,
    /// The first thing wrong, naming the event; none when the chain holds.
    pub broken: Option<String>,
}

/// Check every chain of the audit trail: each event's hash against its
/// content, each event's `previous_hash` against the event before it, the
/// numbering without gaps, and the last event against the chain's head (so
/// that events cut from the end are found too).
pub async fn verify(db: &DatabaseConnection) -> AppResult<Vec<ChainReport>> {
    use entity::audit_event::{Column, Entity};
    let mut chains: Vec<Uuid> = global::find::<entity::audit_chain::Entity>()
        .select_only()
        .column(entity::audit_chain::Column::ChainId)
        .into_tuple()
        .all(db)
        .await?;
    let with_events: Vec<Option<Uuid>> = unscoped::find::<Entity>()
        .select_only()
        .column(Column::OrganizationId)
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    chains.extend(
        with_events
            .into_iter()
            .map(|id| id.unwrap_or(NO_ORGANIZATION)),
    );
    chains.sort_unstable();
    chains.dedup();
    let names: std::collections::HashMap<Uuid, String> =
        global::find::<entity::organization::Entity>()
            .select_only()
            .column(entity::organization::Column::Id)
            .column(entity::organization::Column::Name)
            .into_tuple::<(Uuid, String)>()
            .all(db)
            .await?
            .into_iter()
            .collect();
    let mut reports = Vec::with_capacity(chains.len());
    for chain_id in chains {
        let name = match names.get(&chain_id) {
            Some(name) => format!("{name} ({chain_id})"),
            None if chain_id == NO_ORGANIZATION => "events of no organisation".to_owned(),
            None => format!("organisation {chain_id} (no longer exists)"),
        };
        let (events, broken) = verify_chain(db, chain_id).await?;
        reports.push(ChainReport {
            chain_id,
            name,
            events,
            broken,
        });
    }
    Ok(reports)
}

/// How many events of one chain were checked, and the first thing wrong.
async fn verify_chain(db: &DatabaseConnection, chain_id: Uuid) -> AppResult<(u64, Option<String>)> {
    use entity::audit_event::{Column, Entity};
    const PAGE: u64 = 2_000;
    let in_chain = || {
        unscoped::find::<Entity>().filter(if chain_id == NO_ORGANIZATION {
            Column::OrganizationId.is_null()
        } else {
            Column::OrganizationId.eq(chain_id)
        })
    };
    if let Some(unsealed) = in_chain()
        .filter(
            sea_orm::Condition::any()
                .add(Column::Seq.is_null())
                .add(Column::Hash.is_null()),
        )
        .one(db)
        .await?
    {
        return Ok((
            0,
            Some(format!(
                "event {} ({}) is not sealed into the chain: it has no place or no hash",
                unsealed.id, unsealed.action
            )),
        ));
    }
    let head = global::find_by_id::<entity::audit_chain::Entity>(chain_id)
        .one(db)
        .await?;
    let mut checked = 0u64;
    let mut last: Option<(i64, String, Uuid)> = None;
    loop {
        let after = last.as_ref().map_or(0, |(seq, _, _)| *seq);
        let page = in_chain()
            .filter(Column::Seq.gt(after))
            .order_by_asc(Column::Seq)
            .limit(PAGE)
            .all(db)
            .await?;
        let full = page.len() as u64 == PAGE;
        for event in page {
            let seq = event.seq.unwrap_or_default();
            let expected = last.as_ref().map_or(0, |(seq, _, _)| *seq) + 1;
            if seq != expected {
                return Ok((
                    checked,
                    Some(format!(
                        "event number {expected} is missing: the next one present is event {} (number {seq})",
                        event.id
                    )),
                ));
            }
            let previous = last.as_ref().map(|(_, hash, _)| hash.as_str());
            if event.previous_hash.as_deref() != previous {
                return Ok((
                    checked,
                    Some(format!(
                        "event {} (number {seq}) does not follow the event before it: its previous hash is not that event's hash",
                        event.id
                    )),
                ));
            }
            let hash = entity::audit_event::chain_hash(&event);
            if event.hash.as_deref() != Some(hash.as_str()) {
                return Ok((
                    checked,
                    Some(format!(
                        "event {} (number {seq}, {}) was altered: its content does not match its hash",
                        event.id, event.action
                    )),
                ));
            }
            checked += 1;
            last = Some((seq, hash, event.id));
        }
        if !full {
            break;
        }
    }
    let broken = match (head, last) {
        (None, None) => None,
        (None, Some(_)) => Some("the chain's head is missing".to_owned()),
        (Some(head), None) => (head.seq > 0)
            .then(|| format!("events 1 to {} are missing: the chain holds none", head.seq)),
        (Some(head), Some((seq, _, _))) if head.seq > seq => Some(format!(
            "events {} to {} are missing from the end of the chain",
            seq + 1,
            head.seq
        )),
        (Some(head), Some((seq, hash, id))) => (head.seq != seq || head.hash != hash).then(|| {
            format!("the last event, {id} (number {seq}), is not the one the chain's head records")
        }),
    };
    Ok((checked, broken))
}

/// One event as a line of `audit.ndjson` and the message of a syslog record:
/// every column the hash seals, so that a reader holding the export can check
/// the chain without the database.
pub fn event_json(event: &entity::audit_event::Model) -> serde_json::Value {
    serde_json::json!({
        "id": event.id,
        "organizationId": event.organization_id,
        "seq": event.seq,
        "action": event.action,
        "actorId": event.actor_user_id,
        "sessionId": event.session_id,
        "targetType": event.target_type,
        "targetId": event.target_id,
        "changes": event.changes,
        "ipAddress": event.ip_address,
        "userAgent": event.user_agent,
        "createdAt": event.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "previousHash": event.previous_hash,
        "hash": event.hash,
    })
}

/// The organisation's events recorded in `[from, to)`, in chain order, as
/// newline-delimited JSON read a page at a time: memory stays flat however
/// long the range. AUDIT_READ, and a second factor verified lately when the
/// caller has one; the export is itself in the trail, with its range.
pub async fn export(
    db: &DatabaseConnection,
    actor: &Actor,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> AppResult<impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + use<>> {
    use entity::audit_event::{Column, Entity};
    const PAGE: u64 = 1_000;
    actor.require(Permission::AuditRead)?;
    actor.require_recent_mfa()?;
    if let (Some(from), Some(to)) = (from, to)
        && to < from
    {
        return Err(AppError::bad_input("to", "must not be before from"));
    }
    record(
        db,
        AuditEntry::by(actor, "audit.export").changes(serde_json::json!({
            "from": from,
            "to": to,
        })),
    )
    .await?;
    let db = db.clone();
    let scope = actor.tenant();
    let pages = futures_util::stream::try_unfold(Some(0i64), move |after| {
        let db = db.clone();
        async move {
            let Some(after) = after else {
                return Ok(None);
            };
            let mut select = scope.find::<Entity>().filter(Column::Seq.gt(after));
            if let Some(from) = from {
                select = select.filter(Column::CreatedAt.gte(from));
            }
            if let Some(to) = to {
                select = select.filter(Column::CreatedAt.lt(to));
            }
            let events = select
                .order_by_asc(Column::Seq)
                .limit(PAGE)
                .all(&db)
                .await
                .map_err(std::io::Error::other)?;
            let next = match events.last() {
                Some(last) if events.len() as u64 == PAGE => last.seq,
                _ => None,
            };
            if events.is_empty() {
                return Ok(None);
            }
            let mut lines = Vec::with_capacity(events.len() * 512);
            for event in &events {
                serde_json::to_writer(&mut lines, &event_json(event))
                    .map_err(std::io::Error::other)?;
                lines.push(b'\n');
            }
            Ok(Some((lines, next)))
        }
    });
    Ok(pages)
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

/// The people a record of `scope`'s organisation names (who acted, who was
/// given access, who reviewed), by id: its own accounts, and super admins of
/// any organisation, who may act in it. Other organisations' people are left
/// out.
pub async fn people_in_trail(
    db: &impl ConnectionTrait,
    scope: Scope,
    ids: &[Uuid],
) -> AppResult<Vec<(Uuid, entity::user::Model)>> {
    let people = scope
        .actors()
        .filter(entity::user::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?;
    Ok(people.into_iter().map(|u| (u.id, u)).collect())
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
