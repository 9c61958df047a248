//! A tamper-evident audit trail: each organisation's events form a hash
//! chain. Every event gets its place in the chain (`seq`), its hash and the
//! hash of the one before it; `audit_chains` holds each chain's head.
//!
//! Events recorded before this migration are sealed here, in the order they
//! were recorded, so that every event of the trail is in a chain.

// A migration rewrites every organisation's rows.
#![allow(clippy::disallowed_methods)]

use sea_orm_migration::{
    prelude::*,
    schema::*,
    sea_orm::{ConnectionTrait, DbBackend, FromQueryResult},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Events of no organisation form the chain of this id.
const NO_ORGANIZATION: uuid::Uuid = uuid::Uuid::nil();
const PAGE: u64 = 5_000;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column at a time: SQLite alters one per statement.
        for column in [
            big_integer_null(AuditEvents::Seq),
            string_len_null(AuditEvents::Hash, 64),
            string_len_null(AuditEvents::PreviousHash, 64),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(AuditEvents::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_events_chain")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::OrganizationId)
                    .col(AuditEvents::Seq)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditChains::Table)
                    .col(uuid(AuditChains::ChainId).primary_key())
                    .col(big_integer(AuditChains::Seq))
                    .col(string_len(AuditChains::Hash, 64))
                    .to_owned(),
            )
            .await?;
        seal_recorded_events(manager.get_connection()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditChains::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_audit_events_chain")
                    .table(AuditEvents::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            AuditEvents::PreviousHash,
            AuditEvents::Hash,
            AuditEvents::Seq,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(AuditEvents::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// Seal the events already recorded, chain by chain, in the order they were
/// recorded. On PostgreSQL the append-only trigger stands aside for this
/// transaction alone.
async fn seal_recorded_events(db: &SchemaManagerConnection<'_>) -> Result<(), DbErr> {
    use entity::audit_event::{Column, Entity};
    use sea_orm_migration::sea_orm::{
        ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    };
    let backend = db.get_database_backend();
    if backend == DbBackend::Postgres {
        db.execute_unprepared("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
            .await?;
    }
    let chains: Vec<Option<uuid::Uuid>> = Entity::find()
        .select_only()
        .column(Column::OrganizationId)
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    for organization_id in chains {
        let mut head: Option<(i64, String)> = None;
        let mut after: Option<(chrono::DateTime<chrono::Utc>, uuid::Uuid)> = None;
        loop {
            let mut select = Entity::find()
                .filter(match organization_id {
                    Some(id) => Column::OrganizationId.eq(id),
                    None => Column::OrganizationId.is_null(),
                })
                .order_by_asc(Column::CreatedAt)
                .order_by_asc(Column::Id)
                .limit(PAGE);
            if let Some((at, id)) = after {
                select = select.filter(
                    Condition::any()
                        .add(Column::CreatedAt.gt(at))
                        .add(Column::CreatedAt.eq(at).and(Column::Id.gt(id))),
                );
            }
            let events = select
                .select_only()
                .columns([
                    Column::Id,
                    Column::OrganizationId,
                    Column::ActorUserId,
                    Column::SessionId,
                    Column::Action,
                    Column::TargetType,
                    Column::TargetId,
                    Column::Changes,
                    Column::IpAddress,
                    Column::UserAgent,
                    Column::CreatedAt,
                ])
                .into_model::<Recorded>()
                .all(db)
                .await?;
            let Some(last) = events.last() else { break };
            after = Some((last.created_at, last.id));
            for recorded in events {
                let mut event = recorded.into_event();
                event.seq = Some(head.as_ref().map_or(1, |(seq, _)| seq + 1));
                event.previous_hash = head.as_ref().map(|(_, hash)| hash.clone());
                let hash = entity::audit_event::chain_hash(&event);
                Entity::update_many()
                    .col_expr(Column::Seq, Expr::value(event.seq))
                    .col_expr(Column::Hash, Expr::value(hash.clone()))
                    .col_expr(Column::PreviousHash, Expr::value(event.previous_hash))
                    .filter(Column::Id.eq(event.id))
                    .exec(db)
                    .await?;
                head = event.seq.map(|seq| (seq, hash));
            }
        }
        if let Some((seq, hash)) = head {
            entity::audit_chain::Entity::insert(entity::audit_chain::ActiveModel {
                chain_id: Set(organization_id.unwrap_or(NO_ORGANIZATION)),
                seq: Set(seq),
                hash: Set(hash),
            })
            .exec_without_returning(db)
            .await?;
        }
    }
    if backend == DbBackend::Postgres {
        db.execute_unprepared("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
            .await?;
    }
    Ok(())
}

/// An event as this migration found it: the columns it had before.
#[derive(FromQueryResult)]
struct Recorded {
    id: uuid::Uuid,
    organization_id: Option<uuid::Uuid>,
    actor_user_id: Option<uuid::Uuid>,
    session_id: Option<String>,
    action: String,
    target_type: Option<String>,
    target_id: Option<String>,
    changes: Option<serde_json::Value>,
    ip_address: Option<String>,
    user_agent: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl Recorded {
    fn into_event(self) -> entity::audit_event::Model {
        entity::audit_event::Model {
            id: self.id,
            organization_id: self.organization_id,
            actor_user_id: self.actor_user_id,
            session_id: self.session_id,
            action: self.action,
            target_type: self.target_type,
            target_id: self.target_id,
            changes: self.changes,
            ip_address: self.ip_address,
            user_agent: self.user_agent,
            created_at: self.created_at,
            seq: None,
            hash: None,
            previous_hash: None,
        }
    }
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    OrganizationId,
    Seq,
    Hash,
    PreviousHash,
}

#[derive(DeriveIden)]
enum AuditChains {
    Table,
    ChainId,
    Seq,
    Hash,
}
