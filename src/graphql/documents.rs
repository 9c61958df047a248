//! Parsed GraphQL documents, kept by their text.
//!
//! Clients send the same few operations over and over; parsing one costs more
//! than running a small query such as `{ me { id email } }`. Parsing does not
//! depend on the schema or the caller, so one bounded cache serves every request
//! of the process: a document seen before is copied from it instead of parsed
//! again. Validation still runs on every request.

use std::sync::{Arc, LazyLock};

use async_graphql::{Request, ServerError, parser::types::ExecutableDocument};
use quick_cache::{Weighter, sync::Cache};

/// What the cache may hold, weighed as below: a few thousand typical operations.
const CAPACITY: u64 = 32 * 1024 * 1024;

/// Longer texts are parsed every time: a client with operations that large is
/// rare, and one sending many unique large ones should not churn the cache.
const LONGEST_KEPT: usize = 16 * 1024;

/// An entry's weight: its text and, as an estimate, the parsed tree, which takes
/// a few times the memory of the text.
#[derive(Clone)]
struct BySize;

impl Weighter<String, Arc<ExecutableDocument>> for BySize {
    fn weight(&self, text: &String, _: &Arc<ExecutableDocument>) -> u64 {
        u64::try_from(text.len())
            .unwrap_or(u64::MAX)
            .saturating_mul(8)
            + 512
    }
}

static DOCUMENTS: LazyLock<Cache<String, Arc<ExecutableDocument>, BySize>> =
    LazyLock::new(|| Cache::with_weighter(4096, CAPACITY, BySize));

/// The request's parsed document, from the cache when its text was parsed
/// before; a syntax error is not kept and is reported as the parser gives it.
pub fn parsed(request: &mut Request) -> Result<&ExecutableDocument, ServerError> {
    if request.query.len() <= LONGEST_KEPT {
        if let Some(document) = DOCUMENTS.get(request.query.as_str()) {
            request.set_parsed_query(ExecutableDocument::clone(&document));
        } else {
            let document = request.parsed_query()?.clone();
            DOCUMENTS.insert(request.query.clone(), Arc::new(document));
        }
    }
    request.parsed_query()
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::types::DocumentOperations;

    use super::*;

    fn operation_names(document: &ExecutableDocument) -> Vec<String> {
        match &document.operations {
            DocumentOperations::Single(_) => vec![String::new()],
            DocumentOperations::Multiple(operations) => {
                let mut names: Vec<String> = operations.keys().map(ToString::to_string).collect();
                names.sort();
                names
            }
        }
    }

    #[test]
    fn a_cached_document_is_the_one_its_text_parses_to() {
        let text = "query A { me { id } } query B { __typename }";
        let first = parsed(&mut Request::new(text)).unwrap().clone();
        assert!(DOCUMENTS.get(text).is_some(), "kept after the first parse");
        let mut again = Request::new(text);
        let second = parsed(&mut again).unwrap();
        assert_eq!(operation_names(second), vec!["A", "B"]);
        assert_eq!(format!("{first:?}"), format!("{second:?}"));
    }

    #[test]
    fn syntax_errors_are_reported_and_not_kept() {
        let text = "{ me { id ";
        let error = parsed(&mut Request::new(text)).unwrap_err();
        assert!(!error.locations.is_empty(), "{error:?}");
        assert!(DOCUMENTS.get(text).is_none());
    }

    #[test]
    fn long_texts_are_parsed_but_not_kept() {
        let text = format!("{{ __typename {} }}", " ".repeat(LONGEST_KEPT));
        assert!(parsed(&mut Request::new(text.as_str())).is_ok());
        assert!(DOCUMENTS.get(text.as_str()).is_none());
    }
}
