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
    AssignExpr, AssignOp, AssignTarget, BindingIdent, CallExpr, Callee, Decl, EsVersion,
    ExportDecl, Expr, ExprOrSpread, ExprStmt, FnExpr, Function, FunctionBody, Ident, IdentName,
    Lit, MemberExpr, MemberProp, MetaPropExpr, MetaPropKind, Module, ModuleDecl, ModuleItem,
    ParenExpr, Pat, Program, ReturnStmt, Script, SimpleAssignTarget, Stmt, VarDecl, VarDeclKind,
    VarDeclarator,
};
use swc_core::ecma::codegen::{Emitter, text_writer::JsWriter};
use swc_core::ecma::parser::{Parser, StringInput, Syntax, TsSyntax, lexer::Lexer};
use swc_core::ecma::transforms::base::{fixer::fixer, resolver};
use swc_core::ecma::transforms::typescript::strip;
use swc_core::ecma::visit::{Visit, VisitWith};

/// The export a module's last expression statement is rewritten into.
pub const RESULT_EXPORT: &str = "__mcp_v8_result__";

/// How V8 must load the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A classic script: its completion value is the result, and top-level
    /// `var`/function declarations become properties of the global object.
    Script,
    /// An ES module (it has `import`/`export` or `import.meta`): the last
    /// expression statement is exported as [`RESULT_EXPORT`]. Code with only
    /// top-level `await` runs as a script (see `run_in_async_function`).
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

    let program = match program {
        Program::Module(module) if !needs_module_semantics(&module) => {
            Program::Script(run_in_async_function(module))
        }
        program => program,
    };
    let mut program = program;
    let kind = match &mut program {
        Program::Script(_) => SourceKind::Script,
        Program::Module(module) => {
            export_last_expression(module);
            SourceKind::Module
        }
    };
    // The rewrites above and the type stripping build trees without the
    // parentheses their printed form needs (`result = (1, 2)`, a namespace's
    // immediately called function); the fixer adds exactly those.
    GLOBALS.set(&Globals::new(), || program.mutate(fixer(Some(&comments))));
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

/// Only `import`/`export` declarations and `import.meta` need a real ES module.
/// Code that is a module merely because of top-level `await` runs as a script
/// instead: V8 never unloads a module, so in a heap resumed execution after
/// execution every module would stay forever and the heap would fill up.
fn needs_module_semantics(module: &Module) -> bool {
    struct FindsImportMeta(bool);
    impl Visit for FindsImportMeta {
        fn visit_meta_prop_expr(&mut self, expr: &MetaPropExpr) {
            self.0 |= expr.kind == MetaPropKind::ImportMeta;
        }
    }
    if module
        .body
        .iter()
        .any(|item| matches!(item, ModuleItem::ModuleDecl(_)))
    {
        return true;
    }
    let mut finder = FindsImportMeta(false);
    module.visit_with(&mut finder);
    finder.0
}

/// Turns a module without imports or exports into the script
/// `(async function () { "use strict"; let result; …; result = (last expression); …; return result; }).call(undefined)`,
/// which keeps a module's semantics that matter here (strict mode, top-level
/// `await`, declarations local to the code, `this` undefined); its completion
/// value is the promise of the result.
fn run_in_async_function(module: Module) -> Script {
    let span = module.span;
    let result = Ident::new_no_ctxt(RESULT_EXPORT.into(), DUMMY_SP);
    let mut stmts: Vec<Stmt> = module
        .body
        .into_iter()
        .filter_map(|item| item.stmt())
        .collect();
    let last = stmts.iter().rposition(|stmt| matches!(stmt, Stmt::Expr(_)));
    if let Some(index) = last
        && let Stmt::Expr(statement) = &mut stmts[index]
    {
        let value = statement.expr.take();
        *statement.expr = Expr::Assign(AssignExpr {
            span: statement.span,
            op: AssignOp::Assign,
            left: AssignTarget::Simple(SimpleAssignTarget::Ident(BindingIdent::from(
                result.clone(),
            ))),
            right: value,
        });
    }
    let prologue = [
        Stmt::Expr(ExprStmt {
            span: DUMMY_SP,
            expr: Box::new(Expr::Lit(Lit::Str("use strict".into()))),
        }),
        Stmt::Decl(Decl::Var(Box::new(VarDecl {
            span: DUMMY_SP,
            kind: VarDeclKind::Let,
            decls: vec![VarDeclarator {
                span: DUMMY_SP,
                name: Pat::Ident(BindingIdent::from(result.clone())),
                init: None,
                definite: false,
            }],
            ..Default::default()
        }))),
    ];
    let epilogue = Stmt::Return(ReturnStmt {
        span: DUMMY_SP,
        arg: Some(Box::new(Expr::Ident(result))),
    });
    let body: Vec<Stmt> = prologue
        .into_iter()
        .chain(stmts)
        .chain(std::iter::once(epilogue))
        .collect();
    let function = Function {
        span,
        body: Some(FunctionBody { span, stmts: body }),
        is_async: true,
        ..Default::default()
    };
    let callee = MemberExpr {
        span,
        obj: Box::new(Expr::Paren(ParenExpr {
            span,
            expr: Box::new(Expr::Fn(FnExpr {
                ident: None,
                function: Box::new(function),
            })),
        })),
        prop: MemberProp::Ident(IdentName::new("call".into(), DUMMY_SP)),
    };
    let call = CallExpr {
        span,
        callee: Callee::Expr(Box::new(Expr::Member(callee))),
        args: vec![ExprOrSpread {
            spread: None,
            expr: Box::new(Expr::Ident(Ident::new_no_ctxt(
                "undefined".into(),
                DUMMY_SP,
            ))),
        }],
        ..Default::default()
    };
    Script {
        span,
        body: vec![Stmt::Expr(ExprStmt {
            span,
            expr: Box::new(Expr::Call(call)),
        })],
        shebang: None,
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
    fn top_level_await_alone_runs_as_a_script_in_an_async_function() {
        let source = prepared("const v = await Promise.resolve(2);\nv * 21;\nconst after = 1;");
        assert_eq!(source.kind, SourceKind::Script);
        assert!(source.code.contains("async function"), "{}", source.code);
        assert!(
            source.code.contains(&format!("{RESULT_EXPORT} = v * 21")),
            "{}",
            source.code
        );
        assert!(source.code.contains(&format!("return {RESULT_EXPORT}")));
    }

    #[test]
    fn exports_make_a_module_and_export_the_last_expression() {
        let source = prepared("export const v = await Promise.resolve(2);\nv * 21;");
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
    fn import_meta_keeps_module_semantics() {
        assert_eq!(
            prepared("await 1; import.meta.url").kind,
            SourceKind::Module
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
