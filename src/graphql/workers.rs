//! Wake this instance's workers after a mutation, so that what it queued (an
//! email in the outbox, an import job) goes out at once rather than at the
//! workers' next poll. Resolvers need not remember to: every mutation does it,
//! and one that queued nothing costs the workers one look.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use async_graphql::{
    Response, ServerResult, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery},
    parser::types::{ExecutableDocument, OperationType},
};

use crate::state::AppState;

/// The schema extension; one [`WakeAfterMutation`] per request.
pub struct WakeWorkers;

impl ExtensionFactory for WakeWorkers {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(WakeAfterMutation::default())
    }
}

#[derive(Default)]
pub struct WakeAfterMutation {
    mutation: AtomicBool,
}

#[async_trait::async_trait]
impl Extension for WakeAfterMutation {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        if document
            .operations
            .iter()
            .any(|(_, op)| op.node.ty == OperationType::Mutation)
        {
            self.mutation.store(true, Ordering::Relaxed);
        }
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let response = next.run(ctx, operation_name).await;
        // Each mutation's transaction has committed by now.
        if self.mutation.load(Ordering::Relaxed)
            && let Some(state) = ctx.data_opt::<AppState>()
        {
            state.outbox_wake.notify_one();
            state.import_wake.notify_one();
        }
        response
    }
}
