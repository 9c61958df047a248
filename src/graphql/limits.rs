//! The limits every operation on a websocket is held to, beyond those the
//! schema builder sets (complexity, where a page counts its selection once per
//! item it may hold; recursion; directives). HTTP requests are measured the
//! same way before they execute (`http::graphql`), with [`data_depth`] and
//! [`count_aliases`].
//!
//! - **Depth**, counted over data only: introspection (`__schema`, `__type`)
//!   nests its type references deeper than any data query, and every GraphQL
//!   client, GraphiQL included, sends the standard one. It is answered; a data
//!   query nested deeper than `ROLLCALL_MAX_DEPTH` is not.
//! - **On a websocket**: subscriptions only (queries and mutations go over
//!   HTTP, under its timeout), within the alias limit, and with the caller
//!   resolved from the socket's session afresh.

use std::{collections::HashSet, sync::Arc};

use async_graphql::{
    ErrorExtensions, Request, ServerError, ServerResult, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
    },
    parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet},
};

use super::socket::{SocketSession, current_caller};
use crate::{error::AppError, state::AppState};

/// The schema extension that applies these limits.
pub struct Limits;

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Limits)
    }
}

#[async_trait::async_trait]
impl Extension for Limits {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let Some(socket) = ctx.data_opt::<SocketSession>() else {
            return next.run(ctx, request).await;
        };
        let state = ctx
            .data_opt::<AppState>()
            .ok_or_else(|| server_error(AppError::Internal(anyhow::anyhow!("no state"))))?;
        let caller = current_caller(state, socket).await.map_err(server_error)?;
        next.run(ctx, request.data(caller)).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let Some(state) = ctx.data_opt::<AppState>() else {
            return Ok(document);
        };
        let config = &state.config;
        if data_depth(&document) > config.max_depth {
            return Err(server_error(AppError::bad_input(
                "query",
                format!("is nested deeper than {} levels", config.max_depth),
            )));
        }
        if ctx.data_opt::<SocketSession>().is_none() {
            return Ok(document);
        }
        if document
            .operations
            .iter()
            .any(|(_, op)| op.node.ty != OperationType::Subscription)
        {
            return Err(server_error(AppError::bad_input(
                "query",
                "only subscriptions run over the websocket; send queries and mutations over HTTP",
            )));
        }
        let aliases = count_aliases(&document);
        if aliases > config.max_aliases {
            return Err(server_error(AppError::bad_input(
                "query",
                format!(
                    "uses {aliases} aliases; at most {} are allowed",
                    config.max_aliases
                ),
            )));
        }
        Ok(document)
    }
}

/// How deep the deepest operation of `document` nests its data fields,
/// through fragments; introspection fields count nothing.
pub fn data_depth(document: &ExecutableDocument) -> usize {
    fn walk<'a>(
        document: &'a ExecutableDocument,
        set: &'a SelectionSet,
        visiting: &mut HashSet<&'a str>,
    ) -> usize {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    if name == "__schema" || name == "__type" {
                        0
                    } else if field.node.selection_set.node.items.is_empty() {
                        1
                    } else {
                        1 + walk(document, &field.node.selection_set.node, visiting)
                    }
                }
                Selection::InlineFragment(fragment) => {
                    walk(document, &fragment.node.selection_set.node, visiting)
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    // A fragment spreading itself is refused by validation;
                    // here it only must not loop.
                    match document.fragments.get(&spread.node.fragment_name.node) {
                        Some(fragment) if visiting.insert(name) => {
                            let depth = walk(document, &fragment.node.selection_set.node, visiting);
                            visiting.remove(name);
                            depth
                        }
                        _ => 0,
                    }
                }
            })
            .max()
            .unwrap_or(0)
    }
    document
        .operations
        .iter()
        .map(|(_, op)| walk(document, &op.node.selection_set.node, &mut HashSet::new()))
        .max()
        .unwrap_or(0)
}

/// Aliased fields in the whole document, fragments included.
pub fn count_aliases(document: &ExecutableDocument) -> usize {
    fn walk(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(field) => {
                    usize::from(field.node.alias.is_some()) + walk(&field.node.selection_set.node)
                }
                Selection::InlineFragment(fragment) => walk(&fragment.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    document
        .operations
        .iter()
        .map(|(_, op)| walk(&op.node.selection_set.node))
        .sum::<usize>()
        + document
            .fragments
            .values()
            .map(|f| walk(&f.node.selection_set.node))
            .sum::<usize>()
}

fn server_error(error: AppError) -> ServerError {
    let error = async_graphql::Error::from(error).extend();
    ServerError {
        message: error.message,
        source: None,
        locations: Vec::new(),
        path: Vec::new(),
        extensions: error.extensions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(query).expect("valid")
    }

    #[test]
    fn depth_counts_data_through_fragments_and_not_introspection() {
        assert_eq!(data_depth(&parse("{ me { id } }")), 2);
        assert_eq!(
            data_depth(&parse(
                "{ users { ...U } } fragment U on UserConnection { edges { node { roles { name } } } }"
            )),
            5
        );
        let deep_types = "{ __schema { types { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } } } } }";
        assert_eq!(data_depth(&parse(deep_types)), 0);
        assert_eq!(data_depth(&parse("{ __typename }")), 1);
    }

    #[test]
    fn counts_aliases_in_operations_and_fragments() {
        let doc =
            parse("{ a: me { id } b: me { x: id } ...F } fragment F on Query { c: me { y: id } }");
        assert_eq!(count_aliases(&doc), 5);
    }
}
