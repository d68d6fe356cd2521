//! Turning agent code into something V8 runs: TypeScript stripping, script or
//! module detection, and making the last expression statement the result.
//!
//! Everything passes through swc, TypeScript or not: one parser means one set of
//! syntax-error messages (with line and column in the code the agent wrote), and
//! the emitted JavaScript carries a source map so runtime stack traces point at
//! the agent's lines too.

use swc_core::common::comments::SingleThreadedComments;
use swc_core::common::source_map::DefaultSourceMapGenConfig;
use swc_core::common::sync::Lrc;
use swc_core::common::util::take::Take;
use swc_core::common::{DUMMY_SP, FileName, GLOBALS, Globals, Mark, SourceMap, Spanned};
use swc_core::ecma::ast::{
    BindingIdent, Decl, EsVersion, ExportDecl, Ident, Module, ModuleDecl, ModuleItem, Pat, Program,
    Stmt, VarDecl, VarDeclKind, VarDeclarator,
};
use swc_core::ecma::codegen::{Emitter, text_writer::JsWriter};
use swc_core::ecma::parser::{Parser, StringInput, Syntax, TsSyntax, lexer::Lexer};
use swc_core::ecma::transforms::base::resolver;
use swc_core::ecma::transforms::typescript::strip;

/// The export a module's last expression statement is rewritten into.
pub const RESULT_EXPORT: &str = "__mcp_v8_result__";

/// How V8 must load the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A classic script: its completion value is the result, and top-level
    /// `var`/function declarations become properties of the global object.
    Script,
    /// An ES module (it has `import`/`export` or top-level `await`): the last
    /// expression statement is exported as [`RESULT_EXPORT`].
    Module,
}

/// JavaScript ready for V8, with the source map back to what the agent wrote.
#[derive(Debug, Clone)]
pub struct PreparedSource {
    pub kind: SourceKind,
    pub code: String,
    pub source_map: Vec<u8>,
}

/// A syntax error at a 1-based line and column of the original code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SyntaxError: {message} (at line {line}, column {column})")]
pub struct SyntaxError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

/// Parses `code` as TypeScript (a superset of the JavaScript we accept), strips
/// the types and emits JavaScript plus a source map. `file_name` is the name
/// stack traces will show.
pub fn prepare(code: &str, file_name: &str) -> Result<PreparedSource, SyntaxError> {
    let cm: Lrc<SourceMap> = Lrc::default();
    let file = cm.new_source_file(
        Lrc::new(FileName::Custom(file_name.to_owned())),
        code.to_owned(),
    );
    let comments = SingleThreadedComments::default();
    let syntax = Syntax::Typescript(TsSyntax {
        decorators: true,
        ..Default::default()
    });
    let lexer = Lexer::new(
        syntax,
        EsVersion::latest(),
        StringInput::from(&*file),
        Some(&comments),
    );
    let mut parser = Parser::new_from(lexer);
    // Recoverable errors are still errors for us: V8 would reject the code.
    let mut program = parser
        .parse_program()
        .map_err(|error| syntax_error(&cm, &error))?;
    if let Some(error) = parser.take_errors().first() {
        return Err(syntax_error(&cm, error));
    }

    GLOBALS.set(&Globals::new(), || {
        let unresolved_mark = Mark::new();
        let top_level_mark = Mark::new();
        program.mutate(resolver(unresolved_mark, top_level_mark, true));
        program.mutate(strip(unresolved_mark, top_level_mark));
    });

    let kind = match &mut program {
        Program::Script(_) => SourceKind::Script,
        Program::Module(module) => {
            export_last_expression(module);
            SourceKind::Module
        }
    };
    let (code, source_map) = emit(&cm, &program);
    Ok(PreparedSource {
        kind,
        code,
        source_map,
    })
}

fn syntax_error(cm: &SourceMap, error: &swc_core::ecma::parser::error::Error) -> SyntaxError {
    let position = cm.lookup_char_pos(error.span().lo);
    SyntaxError {
        message: error.kind().msg().into_owned(),
        line: position.line,
        column: position.col_display + 1,
    }
}

/// Rewrites the module's last top-level expression statement `expr;` into
/// `export const __mcp_v8_result__ = (expr);`, so the result of a module is
/// read from its namespace, as a script's is from its completion value.
fn export_last_expression(module: &mut Module) {
    let last = module
        .body
        .iter()
        .rposition(|item| matches!(item, ModuleItem::Stmt(Stmt::Expr(_))));
    let Some(index) = last else { return };
    let ModuleItem::Stmt(Stmt::Expr(statement)) = &mut module.body[index] else {
        return;
    };
    let span = statement.span;
    let init = statement.expr.take();
    let declarator = VarDeclarator {
        span,
        name: Pat::Ident(BindingIdent::from(Ident::new_no_ctxt(
            RESULT_EXPORT.into(),
            DUMMY_SP,
        ))),
        init: Some(init),
        definite: false,
    };
    let declaration = VarDecl {
        span,
        kind: VarDeclKind::Const,
        decls: vec![declarator],
        ..Default::default()
    };
    module.body[index] = ModuleItem::ModuleDecl(ModuleDecl::ExportDecl(ExportDecl {
        span,
        decl: Decl::Var(Box::new(declaration)),
    }));
}

fn emit(cm: &Lrc<SourceMap>, program: &Program) -> (String, Vec<u8>) {
    let mut code = Vec::new();
    let mut mappings = Vec::new();
    {
        let mut emitter = Emitter {
            cfg: swc_core::ecma::codegen::Config::default().with_target(EsVersion::latest()),
            cm: cm.clone(),
            comments: None,
            wr: JsWriter::new(cm.clone(), "\n", &mut code, Some(&mut mappings)),
        };
        // Writing into a Vec cannot fail.
        let _ = emitter.emit_program(program);
    }
    let mut source_map = Vec::new();
    let map = cm.build_source_map(&mappings, None, DefaultSourceMapGenConfig);
    if map.to_writer(&mut source_map).is_err() {
        source_map.clear();
    }
    (String::from_utf8_lossy(&code).into_owned(), source_map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(code: &str) -> PreparedSource {
        prepare(code, "main.ts").expect("valid code")
    }

    #[test]
    fn plain_script_stays_a_script() {
        let source = prepared("var x = 1; x;");
        assert_eq!(source.kind, SourceKind::Script);
        assert!(source.code.contains("var x = 1"));
        assert!(!source.source_map.is_empty());
    }

    #[test]
    fn types_are_stripped() {
        let source = prepared("const n: number = 41;\ninterface A { x: number }\nn + 1;");
        assert!(!source.code.contains("number"), "{}", source.code);
        assert!(!source.code.contains("interface"));
    }

    #[test]
    fn top_level_await_makes_a_module_and_exports_the_last_expression() {
        let source = prepared("const v = await Promise.resolve(2);\nv * 21;\nconst after = 1;");
        assert_eq!(source.kind, SourceKind::Module);
        assert!(
            source
                .code
                .contains(&format!("export const {RESULT_EXPORT} = v * 21")),
            "{}",
            source.code
        );
    }

    #[test]
    fn module_without_expression_exports_nothing() {
        let source = prepared("export const a = 1;");
        assert_eq!(source.kind, SourceKind::Module);
        assert!(!source.code.contains(RESULT_EXPORT));
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let error = prepare("let a = 1;\nlet = ;", "main.ts").expect_err("invalid");
        assert_eq!(error.line, 2);
        assert!(error.column >= 1);
        assert!(error.to_string().contains("line 2"), "{error}");
    }
}
