//! Practice locations as clients read and change them.

use async_graphql::{Context, ID, InputObject, Object, Result};
use chrono::{DateTime, Utc};

use super::{Ctx, connection::parse_id};
use crate::{
    error::AppError,
    services::locations::{self, LocationDetails, RawLocation},
};

/// A practice location of the organisation.
pub struct Location(pub entity::location::Model);

#[Object]
impl Location {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn address_line1(&self) -> Option<&str> {
        self.0.address_line1.as_deref()
    }
    async fn address_line2(&self) -> Option<&str> {
        self.0.address_line2.as_deref()
    }
    async fn city(&self) -> Option<&str> {
        self.0.city.as_deref()
    }
    async fn state(&self) -> Option<&str> {
        self.0.state.as_deref()
    }
    async fn postal_code(&self) -> Option<&str> {
        self.0.postal_code.as_deref()
    }
    /// E.164.
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    async fn active(&self) -> bool {
        self.0.active
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A location; on update every field is replaced (omitted ones are cleared,
/// `active` stays as it is when omitted).
#[derive(InputObject)]
pub struct LocationInput {
    /// Unique within the organisation, whatever its case.
    pub name: String,
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    /// Stored in E.164.
    pub phone: Option<String>,
    pub active: Option<bool>,
}

impl LocationInput {
    fn parse(&self) -> Result<LocationDetails, AppError> {
        let mut details = LocationDetails::parse(&RawLocation {
            name: &self.name,
            address_line1: self.address_line1.as_deref(),
            address_line2: self.address_line2.as_deref(),
            city: self.city.as_deref(),
            state: self.state.as_deref(),
            postal_code: self.postal_code.as_deref(),
            phone: self.phone.as_deref(),
            active: None,
        })
        .map_err(AppError::BadInput)?;
        details.active = self.active;
        Ok(details)
    }
}

#[derive(Default)]
pub struct LocationQuery;

#[Object]
impl LocationQuery {
    /// The organisation's practice locations, by name.
    async fn locations(&self, ctx: &Context<'_>) -> Result<Vec<Location>> {
        let actor = ctx.caller()?.actor()?;
        Ok(locations::list(&ctx.state()?.db, actor)
            .await?
            .into_iter()
            .map(Location)
            .collect())
    }
}

#[derive(Default)]
pub struct LocationMutation;

#[Object]
impl LocationMutation {
    /// Add a practice location (LOCATIONS_MANAGE).
    async fn create_location(&self, ctx: &Context<'_>, input: LocationInput) -> Result<Location> {
        let actor = ctx.caller()?.actor()?;
        let details = input.parse()?;
        Ok(Location(
            locations::create(&ctx.state()?.db, actor, details).await?,
        ))
    }

    /// Change a practice location, or close it with `active: false`
    /// (LOCATIONS_MANAGE).
    async fn update_location(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: LocationInput,
    ) -> Result<Location> {
        let actor = ctx.caller()?.actor()?;
        let id = parse_id(&id, "id")?;
        let details = input.parse()?;
        Ok(Location(
            locations::update(&ctx.state()?.db, actor, id, details).await?,
        ))
    }
}
