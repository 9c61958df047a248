use sea_orm::entity::prelude::*;

/// One entry of the append-only audit trail: who did what, to which record, from where.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Option<Uuid>,
    pub actor_user_id: Option<Uuid>,
    pub session_id: Option<String>,
    /// A stable dotted name such as `session.revoke` or `user.deactivate`.
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// The changed fields; never secrets.
    pub changes: Option<Json>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTimeUtc,
    /// The event's place in its organisation's chain, from 1.
    pub seq: Option<i64>,
    /// SHA-256 (hex) of the event's canonical content and `previous_hash`:
    /// see [`chain_hash`].
    pub hash: Option<String>,
    /// The hash of the event before it in the chain; none for the first.
    pub previous_hash: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The version tag that opens every event's canonical content: a later change
/// of what is hashed gets a new tag, and old events keep theirs.
const CHAIN_VERSION: &str = "rollcall-audit-1";

/// The hash that seals `event` into its chain: SHA-256, as lowercase hex, of
/// its canonical content, which is a JSON array of the version tag and every
/// column but the hash itself (`previous_hash` included, so each event seals
/// the one before it) in a fixed order, with `changes` written with its keys
/// sorted and the time in microseconds. What the database gives back (key
/// order of a `jsonb`, precision of a timestamp) cannot change the hash.
pub fn chain_hash(event: &Model) -> String {
    use sha2::Digest as _;
    let content = serde_json::json!([
        CHAIN_VERSION,
        event.id,
        event.organization_id,
        event.seq,
        event.actor_user_id,
        event.session_id,
        event.action,
        event.target_type,
        event.target_id,
        event.changes.as_ref().map(canonical),
        event.ip_address,
        event.user_agent,
        event
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        event.previous_hash,
    ]);
    hex::encode(sha2::Sha256::digest(content.to_string().as_bytes()))
}

/// `value` with the keys of every object in sorted order, whatever map type
/// serde_json was built with.
fn canonical(value: &Json) -> Json {
    match value {
        Json::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Json::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (key.clone(), canonical(value)))
                    .collect(),
            )
        }
        Json::Array(items) => Json::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Model {
        Model {
            id: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001),
            organization_id: Some(Uuid::from_u128(7)),
            actor_user_id: None,
            session_id: None,
            action: "user.update".to_owned(),
            target_type: Some("User".to_owned()),
            target_id: Some("42".to_owned()),
            changes: Some(serde_json::json!({ "title": "Nurse", "active": true })),
            ip_address: None,
            user_agent: None,
            created_at: "2026-12-03T04:05:06.123456Z".parse().unwrap_or_default(),
            seq: Some(1),
            hash: None,
            previous_hash: None,
        }
    }

    #[test]
    fn the_hash_ignores_key_order_and_sub_microsecond_digits() {
        let a = event();
        let mut b = event();
        b.changes =
            Some(serde_json::from_str(r#"{"active":true,"title":"Nurse"}"#).unwrap_or_default());
        b.created_at = "2026-12-03T04:05:06.123456999Z".parse().unwrap_or_default();
        b.hash = Some("whatever was stored".to_owned());
        assert_eq!(chain_hash(&a), chain_hash(&b));
        assert_eq!(chain_hash(&a).len(), 64);
    }

    #[test]
    fn every_column_is_sealed() {
        let base = chain_hash(&event());
        let mut changed = event();
        changed.changes = Some(serde_json::json!({ "title": "Doctor", "active": true }));
        assert_ne!(chain_hash(&changed), base);
        let mut changed = event();
        changed.seq = Some(2);
        assert_ne!(chain_hash(&changed), base);
        let mut changed = event();
        changed.previous_hash = Some("00".repeat(32));
        assert_ne!(chain_hash(&changed), base);
        let mut changed = event();
        changed.action = "user.create".to_owned();
        assert_ne!(chain_hash(&changed), base);
    }
}
