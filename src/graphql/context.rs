//! Reading what every resolver needs from the context, without `unwrap`.

use async_graphql::Context;

use crate::{auth::Caller, error::AppError, state::AppState};

pub trait Ctx {
    fn state(&self) -> Result<&AppState, AppError>;
    fn caller(&self) -> Result<&Caller, AppError>;
}

impl Ctx for Context<'_> {
    fn state(&self) -> Result<&AppState, AppError> {
        self.data::<AppState>()
            .map_err(|_| AppError::Internal(anyhow::anyhow!("schema built without state")))
    }

    fn caller(&self) -> Result<&Caller, AppError> {
        // A request that carried no session has an anonymous caller, never none.
        Ok(self.data_opt::<Caller>().unwrap_or(&ANONYMOUS))
    }
}

static ANONYMOUS: std::sync::LazyLock<Caller> = std::sync::LazyLock::new(Caller::default);
