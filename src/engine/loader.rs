//! The module loader: resolves imports and serves source maps for stack traces.
//!
//! Imports of other modules (`npm:`, `jsr:`, URLs) arrive with the modules
//! feature; until then every import fails with a message that says so, instead
//! of V8's generic "module not found".

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;

use deno_core::{
    ModuleLoadOptions, ModuleLoadReferrer, ModuleLoadResponse, ModuleLoader, ModuleResolveResponse,
    ModuleSpecifier, ResolutionKind,
};
use deno_error::JsErrorBox;

/// Why an import fails, whatever it names.
fn not_loaded(specifier: impl std::fmt::Display) -> JsErrorBox {
    JsErrorBox::generic(format!(
        "cannot import \"{specifier}\": this server does not load modules (npm:, jsr: or URL imports) yet"
    ))
}

/// Knows the source maps of the code this execution compiled.
#[derive(Default)]
pub struct Loader {
    source_maps: RefCell<HashMap<String, Vec<u8>>>,
}

impl Loader {
    pub fn add_source_map(&self, file_name: &str, source_map: Vec<u8>) {
        self.source_maps
            .borrow_mut()
            .insert(file_name.to_owned(), source_map);
    }
}

impl ModuleLoader for Loader {
    fn resolve(
        &self,
        specifier: &str,
        referrer: &str,
        _kind: ResolutionKind,
    ) -> ModuleResolveResponse {
        // A bare name ("lodash") does not even resolve; it fails as any
        // import does, not with deno_core's advice about relative paths.
        deno_core::resolve_import(specifier, referrer).map_err(|_| not_loaded(specifier))
    }

    fn load(
        &self,
        specifier: &ModuleSpecifier,
        _referrer: Option<&ModuleLoadReferrer>,
        _options: ModuleLoadOptions,
    ) -> ModuleLoadResponse {
        ModuleLoadResponse::Sync(Err(not_loaded(specifier)))
    }

    fn get_source_map(&self, file_name: &str) -> Option<Cow<'_, [u8]>> {
        self.source_maps
            .borrow()
            .get(file_name)
            .map(|map| Cow::Owned(map.clone()))
    }
}
