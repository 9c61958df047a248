//! The GraphQL schema: roots merged from one file per area, with the limits that
//! keep a single request from costing the server more than it should.

mod access_reviews;
mod account;
mod api_clients;
mod audit;
mod break_glass;
mod connection;
mod context;
mod documents;
mod feeds;
mod imports;
pub mod limits;
mod loaders;
mod locations;
mod mfa;
mod people;
mod profiles;
mod projects;
mod providers;
mod session;
pub mod socket;
mod sso;
mod staff;
mod webhooks;

use std::time::Duration;

use async_graphql::{MergedObject, MergedSubscription, Schema, dataloader::DataLoader};

pub use context::Ctx;
pub use documents::parsed as parsed_document;
pub use limits::count_aliases;

use crate::state::AppState;

#[derive(MergedObject, Default)]
pub struct Query(
    account::AccountQuery,
    session::SessionQuery,
    mfa::MfaQuery,
    sso::SsoQuery,
    api_clients::ApiClientQuery,
    webhooks::WebhookQuery,
    providers::ProviderQuery,
    projects::ProjectQuery,
    locations::LocationQuery,
    profiles::ProfileQuery,
    imports::ImportQuery,
    feeds::FeedQuery,
    audit::AuditQuery,
    break_glass::BreakGlassQuery,
    access_reviews::AccessReviewQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    session::SessionMutation,
    mfa::MfaMutation,
    sso::SsoMutation,
    api_clients::ApiClientMutation,
    webhooks::WebhookMutation,
    staff::StaffMutation,
    providers::ProviderMutation,
    projects::ProjectMutation,
    locations::LocationMutation,
    profiles::ProfileMutation,
    imports::ImportMutation,
    feeds::FeedMutation,
    break_glass::BreakGlassMutation,
    access_reviews::AccessReviewMutation,
);

#[derive(MergedSubscription, Default)]
pub struct Subscription(session::SessionSubscription, imports::ImportSubscription);

pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// The schema websockets serve: the same, with [`limits::Limits`] applied to
/// every operation (subscriptions only, the depth and alias limits, the caller
/// resolved afresh from the socket's session). HTTP requests are measured
/// before they execute, so their schema carries no extension and its cost.
#[derive(Clone)]
pub struct SocketSchema(pub AppSchema);

/// The schema with its limits; `state` is shared by every request.
pub fn build_schema(state: Option<AppState>) -> AppSchema {
    builder(state).finish()
}

/// The websockets' schema.
pub fn build_socket_schema(state: AppState) -> SocketSchema {
    SocketSchema(builder(Some(state)).extension(limits::Limits).finish())
}

fn builder(state: Option<AppState>) -> async_graphql::SchemaBuilder<Query, Mutation, Subscription> {
    let mut builder = Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    );
    if let Some(state) = state {
        let config = state.config.clone();
        if !config.introspection {
            builder = builder.disable_introspection();
        }
        // A loader gathers the keys its fields ask for during `loader_delay`
        // before it queries. With no delay, the first field of a list dispatches
        // its batch before its siblings have asked, and a page of 100 users costs
        // hundreds of statements (tests/query_count.rs).
        let delay = config.loader_delay();
        builder = builder
            .limit_complexity(config.max_complexity)
            .limit_recursive_depth(config.max_depth * 2)
            .limit_directives(10)
            .data(loader(loaders::RolesOfUser(state.db.clone()), delay))
            .data(loader(loaders::PermissionsOfRole(state.db.clone()), delay))
            .data(loader(
                loaders::SuspendedRolesOfUser(state.db.clone()),
                delay,
            ))
            .data(loader(loaders::UserById(state.db.clone()), delay))
            .data(loader(loaders::PeopleInTrail(state.db.clone()), delay))
            .data(loader(loaders::ProviderOfUser(state.db.clone()), delay))
            .data(loader(
                loaders::ById::<entity::patient::Entity>::new(state.db.clone()),
                delay,
            ))
            .data(loader(
                loaders::ById::<entity::outbox_message::Entity>::new(state.db.clone()),
                delay,
            ))
            .data(loader(
                loaders::ById::<entity::role::Entity>::new(state.db.clone()),
                delay,
            ))
            .data(loader(loaders::ItemsOfReview(state.db.clone()), delay))
            .data(loader(loaders::CareTeamOfPatient(state.db.clone()), delay))
            .data(loader(loaders::StatsOfProject(state.db.clone()), delay))
            .data(loader(
                loaders::ById::<entity::location::Entity>::new(state.db.clone()),
                delay,
            ))
            .data(loader(
                loaders::CertificationsOfUser(state.db.clone()),
                delay,
            ))
            .data(loader(loaders::AvailabilityOfUser(state.db.clone()), delay))
            .data(loader(
                loaders::AuthenticatorsOfUser(state.db.clone()),
                delay,
            ))
            .data(loader(loaders::RecoveryCodesLeft(state.db.clone()), delay))
            .data(state);
    }
    builder
}

/// A loader that gathers its keys for `delay` before each batch.
fn loader<T: Send + Sync + 'static>(loader: T, delay: Duration) -> DataLoader<T> {
    DataLoader::new(loader, tokio::spawn).delay(delay)
}

/// The SDL the server serves.
pub fn sdl() -> String {
    build_schema(None).sdl()
}
