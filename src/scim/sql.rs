//! What users and groups share in turning a filter and a page into SQL.

use chrono::{DateTime, Utc};
use sea_orm::{
    Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryOrder, QuerySelect, Select,
    sea_query::{Expr, ExprTrait, LikeExpr, SimpleExpr},
};
use serde_json::Value;

use super::{
    ScimError, ScimResult,
    filter::{Filter, Op},
};
use crate::db::escape_like;

/// A page of a list, oldest first, with the list's total: `start_index`
/// counts from 1 (RFC 7644 §3.4.2.4).
pub async fn page<E>(
    db: &impl ConnectionTrait,
    select: Select<E>,
    order: [E::Column; 2],
    start_index: u64,
    count: u64,
) -> ScimResult<(Vec<E::Model>, u64)>
where
    E: EntityTrait,
    E::Model: Send + Sync,
{
    let total = select.clone().count(db).await?;
    if count == 0 {
        return Ok((Vec::new(), total));
    }
    let [first, then] = order;
    let items = select
        .order_by_asc(first)
        .order_by_asc(then)
        .offset(start_index.saturating_sub(1))
        .limit(count)
        .all(db)
        .await?;
    Ok((items, total))
}

/// A filter as a condition: `and`, `or`, `not` and value filters
/// (`emails[…]`, whose inner filter names sub-attributes of `within`) here,
/// each comparison or presence test by `leaf`.
pub fn condition(
    filter: &Filter,
    within: Option<&str>,
    leaf: &dyn Fn(&Filter, Option<&str>) -> ScimResult<Condition>,
) -> ScimResult<Condition> {
    Ok(match filter {
        Filter::And(a, b) => Condition::all()
            .add(condition(a, within, leaf)?)
            .add(condition(b, within, leaf)?),
        Filter::Or(a, b) => Condition::any()
            .add(condition(a, within, leaf)?)
            .add(condition(b, within, leaf)?),
        Filter::Not(inner) => condition(inner, within, leaf)?.not(),
        Filter::Values(path, inner) => {
            if within.is_some() || path.sub.is_some() || path.urn.is_some() {
                return Err(ScimError::invalid_filter(
                    "A value filter applies to an attribute, once.",
                ));
            }
            condition(inner, Some(&path.name), leaf)?
        }
        Filter::Present(_) | Filter::Compare(..) => leaf(filter, within)?,
    })
}

/// A condition that always or never holds.
pub fn always(yes: bool) -> Condition {
    Condition::all().add(Expr::val(1).eq(if yes { 1 } else { 0 }))
}

/// A comparison of text; `ne` holds for a missing value too, as SCIM has it.
pub fn compare_text(expr: SimpleExpr, op: Op, text: String) -> Condition {
    let like = |pattern: String| LikeExpr::new(pattern).escape('\\');
    Condition::all().add(match op {
        Op::Eq => expr.eq(text),
        Op::Ne => {
            return Condition::any()
                .add(expr.clone().is_null())
                .add(expr.ne(text));
        }
        Op::Co => expr.like(like(format!("%{}%", escape_like(&text)))),
        Op::Sw => expr.like(like(format!("{}%", escape_like(&text)))),
        Op::Ew => expr.like(like(format!("%{}", escape_like(&text)))),
        Op::Gt => expr.gt(text),
        Op::Ge => expr.gte(text),
        Op::Lt => expr.lt(text),
        Op::Le => expr.lte(text),
    })
}

/// A comparison of a time with an RFC 3339 value; `None` when the value is
/// no time or the operator does not order.
pub fn compare_time(expr: SimpleExpr, op: Op, value: &Value) -> Option<Condition> {
    let at = value
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())?
        .with_timezone(&Utc);
    Some(Condition::all().add(match op {
        Op::Eq => expr.eq(at),
        Op::Ne => expr.ne(at),
        Op::Gt => expr.gt(at),
        Op::Ge => expr.gte(at),
        Op::Lt => expr.lt(at),
        Op::Le => expr.lte(at),
        Op::Co | Op::Sw | Op::Ew => return None,
    }))
}
