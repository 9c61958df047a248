//! Leases: work that runs once across all instances (forwarding the audit
//! trail, the daily sweeps) is done by whichever instance holds its lease.
//! An instance takes a lease that is free or run out, renews it while it
//! works, and loses it when it stops renewing; another then takes over.

use std::time::Duration;

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    sea_query::{Expr, OnConflict},
};
use uuid::Uuid;

use crate::db::global;
use crate::error::AppResult;

/// Take or renew the lease `name` for `holder` for `length`; whether it is
/// now held by `holder`.
pub async fn hold(
    db: &impl ConnectionTrait,
    name: &str,
    holder: Uuid,
    length: Duration,
) -> AppResult<bool> {
    use entity::lease::{ActiveModel, Column, Entity};
    let now = Utc::now();
    let until = now + chrono::Duration::from_std(length).unwrap_or_default();
    let inserted = Entity::insert(ActiveModel {
        name: Set(name.to_owned()),
        holder: Set(holder),
        locked_until: Set(until),
    })
    .on_conflict(OnConflict::column(Column::Name).do_nothing().to_owned())
    .exec_without_returning(db)
    .await?;
    if inserted == 1 {
        return Ok(true);
    }
    // The compare-and-set: one instance wins a lease that has run out.
    let taken = global::update_many::<Entity>()
        .col_expr(Column::Holder, Expr::value(holder))
        .col_expr(Column::LockedUntil, Expr::value(until))
        .filter(Column::Name.eq(name))
        .filter(
            sea_orm::Condition::any()
                .add(Column::Holder.eq(holder))
                .add(Column::LockedUntil.lt(now)),
        )
        .exec(db)
        .await?;
    Ok(taken.rows_affected == 1)
}

/// Give the lease up at once, so that another instance need not wait for it
/// to run out.
pub async fn release(db: &impl ConnectionTrait, name: &str, holder: Uuid) -> AppResult<()> {
    use entity::lease::{Column, Entity};
    global::delete_many::<Entity>()
        .filter(Column::Name.eq(name))
        .filter(Column::Holder.eq(holder))
        .exec(db)
        .await?;
    Ok(())
}
