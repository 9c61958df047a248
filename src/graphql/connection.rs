//! Relay connections for every list: opaque cursors, `first` capped, `totalCount`.

use async_graphql::{
    Context, Object, OutputType,
    connection::{Connection, Edge, EmptyFields},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use uuid::Uuid;

use super::context::Ctx;
use crate::{
    db::{Page, PageRequest},
    error::{AppError, AppResult},
};

/// Fields every connection carries besides edges and pageInfo.
pub struct Totals(Option<u64>);

#[Object]
impl Totals {
    /// How many items the whole list holds, across all pages.
    async fn total_count(&self) -> async_graphql::Result<u64> {
        // Counted whenever the selection holds this field (see `page_request`).
        self.0
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("totalCount was not counted")).into())
    }
}

pub type Conn<T> = Connection<String, T, Totals, EmptyFields>;

/// What a page costs toward the complexity limit: its children once per item
/// it may hold, so `first: 100` of a list inside `first: 100` of another is
/// refused before any statement runs. An invalid `first` is refused later.
pub fn page_cost(first: Option<i32>, child_complexity: usize) -> usize {
    let items = first.map_or(20, |n| usize::try_from(n).unwrap_or(0));
    items
        .max(1)
        .saturating_mul(child_complexity)
        .saturating_add(1)
}

/// The page size: `first` if given (at most `max`), else 20.
pub fn page_size(first: Option<i32>, max: usize) -> AppResult<u64> {
    match first {
        None => Ok(20.min(max as u64)),
        Some(n) if n < 0 => Err(AppError::bad_input("first", "must not be negative")),
        Some(n) if n as usize > max => Err(AppError::bad_input(
            "first",
            format!("must be at most {max}"),
        )),
        Some(n) => Ok(n as u64),
    }
}

/// The page a list field was asked for: its size (`first`, at most the
/// configured maximum), the id cursor it continues after, and whether the
/// selection asks for `totalCount` (only then is the list counted).
pub fn page_request(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<&str>,
) -> async_graphql::Result<PageRequest> {
    Ok(PageRequest {
        after: decode_cursor(after)?,
        first: page_size(first, ctx.state()?.config.max_page_size)?,
        count: ctx.look_ahead().field("totalCount").exists(),
    })
}

/// [`page_request`] for a list in row order, whose cursors are row numbers.
pub fn number_page_request(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<&str>,
) -> async_graphql::Result<PageRequest<i32>> {
    Ok(PageRequest {
        after: decode_number_cursor(after)?,
        first: page_size(first, ctx.state()?.config.max_page_size)?,
        count: ctx.look_ahead().field("totalCount").exists(),
    })
}

pub fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

pub fn decode_cursor(after: Option<&str>) -> AppResult<Option<Uuid>> {
    after
        .map(|cursor| {
            URL_SAFE_NO_PAD
                .decode(cursor.as_bytes())
                .ok()
                .and_then(|bytes| Uuid::from_slice(&bytes).ok())
                .ok_or_else(|| AppError::bad_input("after", "is not a cursor this list gave out"))
        })
        .transpose()
}

/// Turn a page of models into a connection of their GraphQL types.
pub fn into_connection<M, T: OutputType>(
    page: Page<M>,
    id: impl Fn(&M) -> Uuid,
    node: impl FnMut(M) -> T,
) -> Conn<T> {
    into_connection_by(page, |m| encode_cursor(id(m)), node)
}

/// A cursor for a list ordered by a number (such as a row number).
pub fn encode_number_cursor(n: i32) -> String {
    URL_SAFE_NO_PAD.encode(n.to_be_bytes())
}

pub fn decode_number_cursor(after: Option<&str>) -> AppResult<Option<i32>> {
    after
        .map(|cursor| {
            URL_SAFE_NO_PAD
                .decode(cursor.as_bytes())
                .ok()
                .and_then(|bytes| <[u8; 4]>::try_from(bytes).ok())
                .map(i32::from_be_bytes)
                .ok_or_else(|| AppError::bad_input("after", "is not a cursor this list gave out"))
        })
        .transpose()
}

/// Turn a page into a connection, with cursors made by `cursor`.
pub fn into_connection_by<M, T: OutputType>(
    page: Page<M>,
    cursor: impl Fn(&M) -> String,
    mut node: impl FnMut(M) -> T,
) -> Conn<T> {
    let mut connection = Connection::with_additional_fields(
        page.had_cursor,
        page.has_next_page,
        Totals(page.total_count),
    );
    connection.edges.extend(
        page.items
            .into_iter()
            .map(|model| Edge::new(cursor(&model), node(model))),
    );
    connection
}

/// Parse an `ID` argument; a malformed one is a bad input naming `field`.
pub fn parse_id(raw: &async_graphql::ID, field: &str) -> AppResult<Uuid> {
    raw.parse::<Uuid>()
        .map_err(|_| AppError::bad_input(field, "is not a valid id"))
}
