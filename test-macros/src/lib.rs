//! `#[each_backend]`: one test per storage backend.
//!
//! ```ignore
//! #[each_backend]
//! #[tokio::test]
//! async fn an_admin_invites_a_nurse(backend: Backend) {
//!     let app = TestApp::spawn(backend).await;
//!     // …
//! }
//! ```
//!
//! keeps the function as written and adds a module of the same name with two
//! tests, `an_admin_invites_a_nurse::embedded` (SQLite and in-process sessions)
//! and `an_admin_invites_a_nurse::production` (PostgreSQL and Redis), each
//! carrying the function's test attributes. The production test runs where
//! `crate::common::reachable` says PostgreSQL and Redis answer: always under
//! `CI=true`, where their absence fails it. A failure names its backend, and
//! the two run side by side like any other tests; a test that reads what the
//! whole process counts (`/metrics`) walks the backends in turn instead.

use proc_macro::TokenStream;
use quote::quote;
use syn::{Attribute, FnArg, ItemFn, parse_macro_input, spanned::Spanned};

/// Attributes that make a function a test, and that therefore belong to each
/// generated test rather than to the function itself.
fn is_test_attribute(attribute: &Attribute) -> bool {
    let path = attribute.path();
    path.is_ident("ignore")
        || path.is_ident("should_panic")
        || path.segments.last().is_some_and(|s| s.ident == "test")
}

#[proc_macro_attribute]
pub fn each_backend(arguments: TokenStream, item: TokenStream) -> TokenStream {
    if !arguments.is_empty() {
        let arguments = proc_macro2::TokenStream::from(arguments);
        return syn::Error::new(arguments.span(), "#[each_backend] takes no arguments")
            .to_compile_error()
            .into();
    }
    let mut function = parse_macro_input!(item as ItemFn);
    let signature = &function.sig;
    if signature.asyncness.is_none()
        || signature.inputs.len() != 1
        || !matches!(signature.inputs.first(), Some(FnArg::Typed(_)))
    {
        return syn::Error::new(
            signature.span(),
            "#[each_backend] expects `async fn name(backend: Backend)`",
        )
        .to_compile_error()
        .into();
    }
    let (tests, own): (Vec<Attribute>, Vec<Attribute>) =
        function.attrs.drain(..).partition(is_test_attribute);
    if !tests
        .iter()
        .any(|a| a.path().segments.last().is_some_and(|s| s.ident == "test"))
    {
        return syn::Error::new(
            signature.span(),
            "#[each_backend] goes above a test attribute such as #[tokio::test]",
        )
        .to_compile_error()
        .into();
    }
    function.attrs = own;
    let name = &function.sig.ident;
    quote! {
        #function

        mod #name {
            #(#tests)*
            async fn embedded() {
                super::#name(crate::common::Backend::Embedded).await
            }

            #(#tests)*
            async fn production() {
                if crate::common::reachable(crate::common::Backend::Production).await {
                    super::#name(crate::common::Backend::Production).await
                }
            }
        }
    }
    .into()
}
