//! Connector feeds: imports that fetch their file on a schedule.

use async_graphql::{Context, ID, InputObject, Object, Result};

use super::{
    Ctx,
    connection::parse_id,
    imports::{ImportFeed, ImportJob, ImportKind},
};
use crate::import::feeds::{self, FeedInput};

/// A request header a feed sends, such as an API key.
#[derive(InputObject)]
pub struct HeaderInput {
    name: String,
    value: String,
}

/// A feed to add (no `id`) or change.
#[derive(InputObject)]
pub struct ImportFeedInput {
    id: Option<ID>,
    name: String,
    kind: ImportKind,
    /// https at a public address, unless the server allows private ones.
    url: String,
    /// A mapping template of the same kind.
    template_id: ID,
    /// The project a PATIENTS feed enrols into.
    project_id: Option<ID>,
    /// Cron syntax in the organisation's time zone, e.g. `0 6 * * *` (6 am daily).
    schedule: String,
    /// Replaces the stored headers; leave it out to keep them.
    headers: Option<Vec<HeaderInput>>,
    #[graphql(default = true)]
    active: bool,
}

#[derive(Default)]
pub struct FeedQuery;

#[Object]
impl FeedQuery {
    /// The organisation's import feeds (IMPORTS_RUN).
    async fn import_feeds(&self, ctx: &Context<'_>) -> Result<Vec<ImportFeed>> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let feeds = state.feeds();
        Ok(feeds::list(&state.db, actor)
            .await?
            .into_iter()
            .map(|f| ImportFeed::new(f, &feeds))
            .collect())
    }
}

#[derive(Default)]
pub struct FeedMutation;

#[Object]
impl FeedMutation {
    /// Add or change a feed (IMPORTS_RUN and the kind's permissions).
    async fn save_import_feed(
        &self,
        ctx: &Context<'_>,
        input: ImportFeedInput,
    ) -> Result<ImportFeed> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        let input = FeedInput {
            id: input.id.as_ref().map(|id| parse_id(id, "id")).transpose()?,
            name: input.name,
            kind: input.kind.into(),
            url: input.url,
            template_id: parse_id(&input.template_id, "templateId")?,
            project_id: input
                .project_id
                .as_ref()
                .map(|id| parse_id(id, "projectId"))
                .transpose()?,
            schedule: input.schedule,
            headers: input
                .headers
                .map(|h| h.into_iter().map(|h| (h.name, h.value)).collect()),
            active: input.active,
        };
        let feeds = state.feeds();
        Ok(ImportFeed::new(feeds.save(actor, input).await?, &feeds))
    }

    /// Run a feed now: its run's import job (IMPORTS_RUN).
    async fn run_import_feed(&self, ctx: &Context<'_>, id: ID) -> Result<ImportJob> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        Ok(ImportJob(
            state.feeds().run_now(actor, parse_id(&id, "id")?).await?,
        ))
    }

    /// Remove a feed; its past runs stay (IMPORTS_RUN).
    async fn delete_import_feed(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let state = ctx.state()?;
        let actor = ctx.caller()?.actor()?;
        feeds::delete(&state.db, actor, parse_id(&id, "id")?).await?;
        Ok(true)
    }
}
