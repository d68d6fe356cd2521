//! Turning agent code into something V8 runs: TypeScript stripping, script or
//! module detection, and the result of code that is not a plain script
//! ([`completion`]).
//!
//! Everything passes through swc, TypeScript or not: one parser means one set of
//! syntax-error messages (with line and column in the code the agent wrote), and
//! the emitted JavaScript carries a source map so runtime stack traces point at
//! the agent's lines too.

mod completion;

use swc_core::common::comments::{Comments, SingleThreadedComments};
use swc_core::common::source_map::DefaultSourceMapGenConfig;
use swc_core::common::sync::Lrc;
use swc_core::common::{
    BytePos, DUMMY_SP, FileName, GLOBALS, Globals, Mark, SourceFile, SourceMap, Span, Spanned,
};
use swc_core::ecma::ast::{
    BindingIdent, CallExpr, Callee, Decl, Decorator, EsVersion, ExportNamedSpecifier,
    ExportSpecifier, Expr, ExprOrSpread, ExprStmt, FnExpr, Function, FunctionBody, Ident,
    IdentName, Lit, MemberExpr, MemberProp, MetaPropExpr, MetaPropKind, Module, ModuleDecl,
    ModuleExportName, ModuleItem, NamedExport, ParenExpr, Pat, Program, ReturnStmt, Script, Stmt,
    TsType, UsingDecl, VarDecl, VarDeclKind, VarDeclarator,
};
use swc_core::ecma::codegen::{Emitter, text_writer::JsWriter};
use swc_core::ecma::parser::error::SyntaxError as SwcSyntaxError;
use swc_core::ecma::parser::{Parser, StringInput, Syntax, TsSyntax, lexer::Lexer};
use swc_core::ecma::transforms::base::{fixer::fixer, resolver};
use swc_core::ecma::transforms::typescript::{Config as StripConfig, typescript};
use swc_core::ecma::visit::{Visit, VisitWith};

/// The variable that holds the completion value of code that is not a plain
/// script, and the export a module's result is read from.
pub const RESULT_EXPORT: &str = "__mcp_v8_result__";

/// How V8 must load the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A classic script: its completion value is the result, and top-level
    /// `var`/function declarations become properties of the global object.
    Script,
    /// An ES module (it has `import`/`export` or `import.meta`): its
    /// completion value is exported as [`RESULT_EXPORT`]. Code with only
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

/// Why code could not be prepared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    #[error(
        "the code is too long to parse on this machine: a stack of {stack_mib} MiB for it \
         could not be reserved ({reason})"
    )]
    NoStack { stack_mib: usize, reason: String },
    #[error("the code could not be prepared: the TypeScript parser failed unexpectedly")]
    ParserPanicked,
}

/// The deepest nesting accepted of brackets, and of statements, functions,
/// classes, array and object literals, assignments, patterns and types. No
/// sensible code comes near it, and swc takes time (and for some, memory)
/// that grows with the square of such depth: 20 000 nested arrays take 4 s
/// and 3 GB, 40 000 nested `if`s 90 s and 12 GB.
pub const MAX_NESTING: usize = 1000;

/// Stack swc may use per byte of code, with a margin. swc parses, transforms
/// and prints recursively, so deeply nested code needs stack in proportion to
/// its length; the worst case measured is `((((…))))`: ~1.6 KiB per byte in a
/// release build, ~7.7 KiB in a debug build (larger frames).
const STACK_PER_CODE_BYTE: usize = if cfg!(debug_assertions) {
    10 * 1024
} else {
    2 * 1024
};
/// Stack any thread can be trusted to have free for swc: half of the usual
/// 8 MiB main-thread stack.
const SAFE_STACK: usize = 4 * 1024 * 1024;
/// Stack for everything but the nesting: swc's own frames, the allocator.
const BASE_STACK: usize = 16 * 1024 * 1024;

/// Parses `code` as TypeScript (a superset of the JavaScript we accept), strips
/// the types and emits JavaScript plus a source map. `file_name` is the name
/// stack traces will show.
///
/// Code long enough to nest deeper than the calling thread's stack could take
/// is prepared on a thread with a stack sized for it: no code, however it
/// nests, can overflow a stack and end the worker. (The stack is reserved, not
/// used: only the pages the nesting touches take memory.)
///
/// `using_declarations` says whether the isolate that will run the code has
/// explicit resource management: V8 leaves it out of isolates that make heap
/// snapshots (and aborts the process on a `using` there), so stateful
/// engines refuse such code here, in words.
pub fn prepare(
    code: &str,
    file_name: &str,
    using_declarations: bool,
) -> Result<PreparedSource, PrepareError> {
    if let Some(offset) = first_bracket_too_deep(code) {
        let (line, column) = line_and_column(code, offset);
        return Err(SyntaxError {
            message: format!("the code nests brackets more than {MAX_NESTING} levels deep"),
            line,
            column,
        }
        .into());
    }
    let stack = code.len().saturating_mul(STACK_PER_CODE_BYTE);
    if stack <= SAFE_STACK {
        return Ok(prepare_here(code, file_name, using_declarations)?);
    }
    let stack = stack.saturating_add(BASE_STACK);
    let no_stack = |reason: String| PrepareError::NoStack {
        stack_mib: stack / (1024 * 1024),
        reason,
    };
    std::thread::scope(|scope| {
        let preparing = std::thread::Builder::new()
            .name("mcp-v8-prepare".into())
            .stack_size(stack)
            .spawn_scoped(scope, || prepare_here(code, file_name, using_declarations))
            .map_err(|error| no_stack(error.to_string()))?;
        match preparing.join() {
            Ok(prepared) => Ok(prepared?),
            // swc is not known to panic on any input; should it, say so.
            Err(_) => Err(PrepareError::ParserPanicked),
        }
    })
}

/// The byte offset of the first bracket (`(`, `[`, `{`) that opens more than
/// [`MAX_NESTING`] levels deep, outside strings, templates and comments.
///
/// A quick look before parsing, so a megabyte of `((((` is refused without
/// parsing it (which takes stack and memory in proportion to the depth). It
/// is a heuristic, and safe either way: it does not know regular expressions,
/// so brackets in one may count, but code over the limit by its count alone
/// is not code anyone writes; nesting it misses is caught after parsing.
fn first_bracket_too_deep(code: &str) -> Option<usize> {
    let bytes = code.as_bytes();
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(at);
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'"' | b'\'' | b'`' => at = end_of_quoted(bytes, at),
            b'/' if bytes.get(at + 1) == Some(&b'/') => at = next_byte(bytes, at, b'\n'),
            b'/' if bytes.get(at + 1) == Some(&b'*') => {
                at = code[at + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |end| at + 2 + end + 1);
            }
            _ => {}
        }
        at += 1;
    }
    None
}

/// The offset of the quote that closes the one at `start` (or the end).
fn end_of_quoted(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut at = start + 1;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'\\' => at += 1,
            byte if byte == quote => return at,
            _ => {}
        }
        at += 1;
    }
    bytes.len()
}

/// The offset of the next `byte` from `start` on (or the end).
fn next_byte(bytes: &[u8], start: usize, byte: u8) -> usize {
    bytes[start..]
        .iter()
        .position(|&b| b == byte)
        .map_or(bytes.len(), |offset| start + offset)
}

/// The 1-based line and column of a byte offset, the column in UTF-16 code
/// units as V8 counts them, so a syntax error points where a stack trace
/// would (an emoji is two columns).
fn line_and_column(code: &str, offset: usize) -> (usize, usize) {
    let before = code.get(..offset).unwrap_or(code);
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].encode_utf16().count() + 1,
    )
}

fn prepare_here(
    code: &str,
    file_name: &str,
    using_declarations: bool,
) -> Result<PreparedSource, SyntaxError> {
    let cm: Lrc<SourceMap> = Lrc::default();
    let file = cm.new_source_file(
        Lrc::new(FileName::Custom(file_name.to_owned())),
        code.to_owned(),
    );
    let mut comments = SingleThreadedComments::default();
    let mut program = parse(&file, Goal::ScriptOrModule, Some(&comments))
        .map_err(|error| refused_syntax(code, &file, &error))?;
    if let Program::Script(script) = &program
        && code.contains("await")
        && names_await(script)
    {
        // A script may name a variable `await`, so `await (p)` and `await [p]`
        // parse as a script calling it or indexing it: the code runs and
        // fails with "await is not defined". Nobody means that; they mean
        // top-level await, and get it when the code also parses as a module.
        let module_comments = SingleThreadedComments::default();
        if let Ok(module) = parse(&file, Goal::Module, Some(&module_comments)) {
            program = module;
            comments = module_comments;
        }
    }
    let refused = refusal(&program, using_declarations);
    if let Some((span, message)) = refused {
        let (line, column) = line_and_column_at(code, &file, span.lo);
        return Err(SyntaxError {
            message,
            line,
            column,
        });
    }

    GLOBALS.set(&Globals::new(), || {
        let unresolved_mark = Mark::new();
        let top_level_mark = Mark::new();
        program.mutate(resolver(unresolved_mark, top_level_mark, true));
        // Imports stay unless marked `type`: TypeScript would drop an
        // import whose names are unused, and code importing a module this
        // server cannot load would then run as if it had loaded.
        let config = StripConfig {
            verbatim_module_syntax: true,
            ..StripConfig::default()
        };
        program.mutate(typescript(config, unresolved_mark, top_level_mark));
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
            export_completion(module);
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

/// [`syntax_error`], saying what to do instead where swc's own words do not
/// suggest it: for JSX ("Expression expected" at the first `<div>`), and for
/// a `return` outside functions, which code written as a function body has.
fn refused_syntax(
    code: &str,
    file: &SourceFile,
    error: &swc_core::ecma::parser::error::Error,
) -> SyntaxError {
    let mut refused = syntax_error(code, file, error);
    if matches!(error.kind(), SwcSyntaxError::ReturnNotAllowed) {
        refused.message = format!(
            "{}: the code is not a function body; its result is the value of its last \
             expression statement, so end it with the value (`x;`, not `return x;`)",
            refused.message
        );
    } else if parses_as_tsx(file) {
        refused.message = format!(
            "JSX is not supported (the code parses only as JSX/TSX): write elements as \
             function calls or strings; the parser says: {}",
            refused.message
        );
    }
    refused
}

/// Whether `file` parses as TSX. Only asked of code that failed to parse as
/// TypeScript, which then fails for JSX (TSX differs from TypeScript only in
/// reading `<` as the start of an element).
fn parses_as_tsx(file: &SourceFile) -> bool {
    parse(file, Goal::Tsx, None).is_ok()
}

/// What [`parse`] reads the code as.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Goal {
    /// TypeScript, as a script or as a module, whichever it is (a module
    /// when only a module's grammar accepts it).
    ScriptOrModule,
    /// TypeScript as a module: `await` is a keyword everywhere.
    Module,
    /// TypeScript with JSX elements, as a script or a module.
    Tsx,
}

/// Parses `file` as `goal` says. Recoverable errors are errors too: V8 would
/// reject the code swc recovered from.
fn parse(
    file: &SourceFile,
    goal: Goal,
    comments: Option<&dyn Comments>,
) -> Result<Program, swc_core::ecma::parser::error::Error> {
    let syntax = Syntax::Typescript(TsSyntax {
        tsx: goal == Goal::Tsx,
        decorators: true,
        ..Default::default()
    });
    let lexer = Lexer::new(
        syntax,
        EsVersion::latest(),
        StringInput::from(file),
        comments,
    );
    let mut parser = Parser::new_from(lexer);
    let program = match goal {
        Goal::Module => parser.parse_module().map(Program::Module)?,
        Goal::ScriptOrModule | Goal::Tsx => parser.parse_program()?,
    };
    match parser.take_errors().into_iter().next() {
        Some(error) => Err(error),
        None => Ok(program),
    }
}

/// Whether `script` uses `await` as an identifier (`await (p)` is then a
/// call of a function named `await`).
fn names_await(script: &Script) -> bool {
    struct FindsAwait(bool);
    impl Visit for FindsAwait {
        fn visit_ident(&mut self, ident: &Ident) {
            self.0 |= &*ident.sym == "await";
        }
    }
    let mut finder = FindsAwait(false);
    script.visit_with(&mut finder);
    finder.0
}

fn syntax_error(
    code: &str,
    file: &SourceFile,
    error: &swc_core::ecma::parser::error::Error,
) -> SyntaxError {
    let (line, column) = line_and_column_at(code, file, error.span().lo);
    SyntaxError {
        message: error.kind().msg().into_owned(),
        line,
        column,
    }
}

/// [`line_and_column`] of a position in `file`, whose text is `code`.
fn line_and_column_at(code: &str, file: &SourceFile, position: BytePos) -> (usize, usize) {
    let offset = position.0.saturating_sub(file.start_pos.0);
    line_and_column(code, offset as usize)
}

/// Why parsed code is refused before any transform, and where: nesting more
/// than [`MAX_NESTING`] deep (counting the kinds of node swc takes more than
/// linear time for; the walk never goes deeper than that), or a decorator
/// (TypeScript parses them, but neither this crate transforms them nor V8
/// runs them, and V8's own error would be confusing), or a `using`
/// declaration where the isolate lacks them (see [`prepare`]). One walk
/// finds them all.
fn refusal(program: &Program, using_declarations: bool) -> Option<(Span, String)> {
    #[derive(Default)]
    struct Walk {
        depth: usize,
        too_deep: Option<Span>,
        decorator: Option<Span>,
        using: Option<Span>,
    }
    impl Walk {
        fn enter<N: VisitWith<Self>>(&mut self, node: &N, span: Span) {
            if self.too_deep.is_some() {
                return;
            }
            if self.depth == MAX_NESTING {
                self.too_deep = Some(span);
                return;
            }
            self.depth += 1;
            node.visit_children_with(self);
            self.depth -= 1;
        }
    }
    impl Visit for Walk {
        fn visit_expr(&mut self, node: &Expr) {
            match node {
                Expr::Array(_)
                | Expr::Object(_)
                | Expr::Fn(_)
                | Expr::Arrow(_)
                | Expr::Class(_)
                | Expr::Assign(_) => self.enter(node, node.span()),
                // Chains of operators, calls and member accesses cost swc
                // time in proportion to their length only.
                _ => node.visit_children_with(self),
            }
        }
        // A top-level statement is the code itself, not a level of it:
        // `[[1]]` nests two deep.
        fn visit_script(&mut self, node: &Script) {
            for statement in &node.body {
                statement.visit_children_with(self);
            }
        }
        fn visit_module_item(&mut self, node: &ModuleItem) {
            match node {
                ModuleItem::Stmt(statement) if self.depth == 0 => {
                    statement.visit_children_with(self)
                }
                _ => node.visit_children_with(self),
            }
        }
        fn visit_stmt(&mut self, node: &Stmt) {
            self.enter(node, node.span());
        }
        fn visit_pat(&mut self, node: &Pat) {
            self.enter(node, node.span());
        }
        fn visit_ts_type(&mut self, node: &TsType) {
            self.enter(node, node.span());
        }
        fn visit_decorator(&mut self, node: &Decorator) {
            self.decorator.get_or_insert(node.span);
            node.visit_children_with(self);
        }
        fn visit_using_decl(&mut self, node: &UsingDecl) {
            self.using.get_or_insert(node.span);
            node.visit_children_with(self);
        }
    }
    let mut walk = Walk::default();
    program.visit_with(&mut walk);
    if let Some(span) = walk.too_deep {
        return Some((
            span,
            format!("the code nests more than {MAX_NESTING} levels deep"),
        ));
    }
    if let Some(span) = walk.decorator {
        return Some((span, "decorators are not supported".to_owned()));
    }
    match walk.using {
        Some(span) if !using_declarations => Some((
            span,
            "`using` declarations are not available on a stateful server: V8 leaves \
             explicit resource management out of the isolates that make heap snapshots; \
             release resources in a try/finally instead"
                .to_owned(),
        )),
        _ => None,
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
/// `(async function () { "use strict"; let result; …; result = (expression); …; return result; }).call(undefined)`
/// (every expression statement assigns `result`: see [`completion`]),
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
    completion::capture(&mut stmts, &result);
    let prologue = [
        Stmt::Expr(ExprStmt {
            span: DUMMY_SP,
            expr: Box::new(Expr::Lit(Lit::Str("use strict".into()))),
        }),
        declare(&result),
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

/// Makes the module's completion value (see [`completion`]) its export
/// [`RESULT_EXPORT`], so the result of a module is read from its namespace,
/// as a script's is from its completion value.
fn export_completion(module: &mut Module) {
    let result = Ident::new_no_ctxt(RESULT_EXPORT.into(), DUMMY_SP);
    completion::capture_module(&mut module.body, &result);
    module.body.insert(0, ModuleItem::Stmt(declare(&result)));
    module
        .body
        .push(ModuleItem::ModuleDecl(ModuleDecl::ExportNamed(
            NamedExport {
                span: DUMMY_SP,
                specifiers: vec![ExportSpecifier::Named(ExportNamedSpecifier {
                    span: DUMMY_SP,
                    orig: ModuleExportName::Ident(result),
                    exported: None,
                    is_type_only: false,
                })],
                src: None,
                type_only: false,
                with: None,
            },
        )));
}

/// `let <name>;`
fn declare(name: &Ident) -> Stmt {
    Stmt::Decl(Decl::Var(Box::new(VarDecl {
        span: DUMMY_SP,
        kind: VarDeclKind::Let,
        decls: vec![VarDeclarator {
            span: DUMMY_SP,
            name: Pat::Ident(BindingIdent::from(name.clone())),
            init: None,
            definite: false,
        }],
        ..Default::default()
    })))
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
        prepare(code, "main.ts", true).expect("valid code")
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
    fn await_of_a_parenthesized_expression_is_a_top_level_await() {
        for code in ["await (Promise.resolve(2))", "await [1]", "f(await (2))"] {
            let source = prepared(code);
            assert_eq!(source.kind, SourceKind::Script);
            assert!(source.code.contains("async function"), "{}", source.code);
        }
        let declares = prepared("var await = (x) => x; await (2);");
        assert!(
            !declares.code.contains("async function"),
            "{}",
            declares.code
        );
    }

    #[test]
    fn exports_make_a_module_that_exports_its_completion_value() {
        let source = prepared("export const v = await Promise.resolve(2);\nv * 21;");
        assert_eq!(source.kind, SourceKind::Module);
        for part in [
            format!("let {RESULT_EXPORT};"),
            format!("{RESULT_EXPORT} = v * 21;"),
            format!("export {{ {RESULT_EXPORT} }};"),
        ] {
            assert!(source.code.contains(&part), "{part:?} in {}", source.code);
        }
    }

    #[test]
    fn import_meta_keeps_module_semantics() {
        assert_eq!(
            prepared("await 1; import.meta.url").kind,
            SourceKind::Module
        );
    }

    /// A statement whose completion is undefined when its body yields none
    /// resets the result first; a body that is one such statement gets a
    /// block for the reset; a label stays on its loop, after the reset.
    #[test]
    fn compound_statements_reset_the_result_before_they_run() {
        let reset = format!("{RESULT_EXPORT} = void 0;");
        let source = prepared("await 0; if (a) for (;;) 1; l: while (b) continue l;");
        let code = source.code.split_whitespace().collect::<Vec<_>>().join(" ");
        for part in [
            format!("{reset} if (a) {{ {reset} for(;;){RESULT_EXPORT} = 1; }}"),
            format!("{reset} l: while(b)continue l;"),
        ] {
            assert!(code.contains(&part), "{part:?} in {code}");
        }
        let finally = prepared("await 0; try { 1 } finally { 2 }").code;
        assert!(
            finally.contains(&format!("{RESULT_EXPORT} = 1")),
            "{finally}"
        );
        assert!(
            !finally.contains(&format!("{RESULT_EXPORT} = 2")),
            "{finally}"
        );
    }

    fn nested(depth: usize) -> [String; 7] {
        [
            format!("{}1{}", "(".repeat(depth), ")".repeat(depth)),
            format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
            format!("{}1{}", "({a:".repeat(depth), "})".repeat(depth)),
            format!("{}1", "()=>".repeat(depth)),
            format!("{}{}", "function f(){".repeat(depth), "}".repeat(depth)),
            format!("{};", "if (1)".repeat(depth)),
            format!("let a; await 0; {}1", "a=".repeat(depth)),
        ]
    }

    /// Nesting overflowed the worker's main-thread stack (and so killed the
    /// worker) at a few thousand levels.
    #[test]
    fn deep_nesting_is_refused_in_words() {
        for code in nested(20_000) {
            let error = prepare(&code, "main.ts", true).expect_err("too deep");
            assert!(
                error.to_string().contains("more than 1000 levels deep"),
                "{error}"
            );
        }
        // Past the bracket count, nesting without brackets is caught after
        // parsing, on a stack sized for it.
        let error = prepare(&nested(20_000)[6], "main.ts", true).expect_err("too deep");
        assert_eq!(
            error,
            PrepareError::Syntax(SyntaxError {
                message: "the code nests more than 1000 levels deep".to_owned(),
                line: 1,
                // "let a; await 0; " and 1000 assignments pass; the 1001st is refused.
                column: 2017,
            })
        );
    }

    /// Chains swc handles in linear time are not limited; they take stack in
    /// proportion to their length, on a thread sized for it.
    #[test]
    fn long_chains_are_prepared() {
        let length = 20_000;
        for code in [
            format!("{}1", "!".repeat(length)),
            format!("1{}", "+1".repeat(length)),
            format!("a{}", ".b".repeat(length)),
            format!("{}1", "x?y:".repeat(length)),
            format!("await 0; {}1", "typeof ".repeat(length)),
        ] {
            let source = prepare(&code, "main.ts", true).expect("prepares");
            assert!(!source.code.is_empty());
        }
    }

    #[test]
    fn brackets_are_counted_outside_strings_and_comments_only() {
        let opening = "(".repeat(MAX_NESTING + 1);
        for code in [
            format!("'{opening}'"),
            format!("\"{opening}\""),
            format!("`{opening}`"),
            format!("'\\'{opening}'"),
            format!("// {opening}\n1"),
            format!("/* {opening} */ 1"),
        ] {
            assert_eq!(first_bracket_too_deep(&code), None, "{code:.20}");
            prepare(&code, "main.ts", true).expect("prepares");
        }
        let code = format!("1;\n  {opening}");
        assert_eq!(first_bracket_too_deep(&code), Some(5 + MAX_NESTING));
        let error = prepare(&code, "main.ts", true).expect_err("too deep");
        assert!(
            error
                .to_string()
                .ends_with("brackets more than 1000 levels deep (at line 2, column 1003)"),
            "{error}"
        );
    }

    #[test]
    fn nesting_up_to_the_limit_is_prepared() {
        // Each level of these is one to three expressions or statements.
        for code in nested(MAX_NESTING / 3 - 1) {
            let source = prepare(&code, "main.ts", true).expect("prepares");
            assert!(!source.code.is_empty());
        }
    }

    /// The limit is exact: `MAX_NESTING` levels prepare, one more does not.
    #[test]
    fn nesting_of_exactly_the_limit_is_prepared() {
        let arrays = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        let objects = |n: usize| format!("x = {}1{}", "{a:".repeat(n), "}".repeat(n));
        prepare(&arrays(MAX_NESTING), "main.ts", true).expect("1000 arrays");
        prepare(&objects(MAX_NESTING - 1), "main.ts", true).expect("an assignment of 999 objects");
        for code in [arrays(MAX_NESTING + 1), objects(MAX_NESTING)] {
            let error = prepare(&code, "main.ts", true).expect_err("one level too deep");
            assert!(
                error.to_string().contains("more than 1000 levels deep"),
                "{error}"
            );
        }
    }

    /// JSX is named in the error; other syntax errors are left as they were.
    #[test]
    fn jsx_is_named_as_what_is_not_supported() {
        for code in [
            "const el = <div className=\"a\">hi</div>;\nel",
            "function App() { return <App />; }",
        ] {
            let error = prepare(code, "main.ts", true).expect_err("JSX");
            let PrepareError::Syntax(error) = error else {
                panic!("{error}");
            };
            assert!(
                error.message.starts_with("JSX is not supported"),
                "{code}: {error:?}"
            );
        }
        let error = prepare("let x = ;", "main.ts", true).expect_err("not JSX");
        assert!(!error.to_string().contains("JSX"), "{error}");
    }

    #[test]
    fn a_return_outside_functions_says_how_to_give_the_result() {
        for code in ["return 5", "const x = 1;\nif (x) { return x; }\nx"] {
            let error = prepare(code, "main.ts", true).expect_err("a top-level return");
            let PrepareError::Syntax(error) = error else {
                panic!("{error}");
            };
            assert!(
                error
                    .message
                    .starts_with("Return statement is not allowed here: ")
                    && error.message.contains("not `return x;`"),
                "{code}: {error:?}"
            );
        }
    }

    #[test]
    fn decorators_are_refused_where_they_are() {
        for code in [
            "function dec(c) { return c }\n@dec class A {}",
            "class A {\n  @dec m() {} }",
        ] {
            let error = prepare(code, "main.ts", true).expect_err("decorator");
            let PrepareError::Syntax(error) = error else {
                panic!("{error}");
            };
            assert_eq!(error.message, "decorators are not supported");
            assert_eq!(error.line, 2, "{code}");
        }
    }

    #[test]
    fn using_declarations_are_refused_where_the_isolate_lacks_them() {
        for (code, line, column) in [
            ("{ using r = null; }\n1", 1, 3),
            ("function f() {\n  using r = null;\n}", 2, 3),
            (
                "async function f() {\n for (await using r of []) {} }",
                2,
                7,
            ),
        ] {
            prepare(code, "main.ts", true).expect("stateless isolates have them");
            let error = prepare(code, "main.ts", false).expect_err(code);
            let PrepareError::Syntax(error) = error else {
                panic!("{code}: {error:?}");
            };
            assert!(error.message.contains("`using` declarations"), "{error:?}");
            assert_eq!((error.line, error.column), (line, column), "{code}");
        }
    }

    /// Columns count UTF-16 code units, as V8's stack traces do: an emoji
    /// takes two, an accented letter one.
    #[test]
    fn columns_count_utf16_code_units() {
        for (code, column) in [
            ("let s = \"ab\"; let x = ;", 23),
            ("let s = \"\u{1F600}\u{1F600}\"; let x = ;", 25),
            ("let s = \"\u{e9}\u{20ac}\"; let x = ;", 23),
        ] {
            let error = prepare_here(code, "main.ts", true).expect_err(code);
            assert_eq!((error.line, error.column), (1, column), "{code}");
        }
        let error = prepare_here("let s = \"\u{1F600}\"; @d class C {}", "main.ts", true)
            .expect_err("decorator");
        assert_eq!((error.line, error.column), (1, 15), "{error:?}");
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let error = prepare_here("let a = 1;\nlet = ;", "main.ts", true).expect_err("invalid");
        assert_eq!(error.line, 2);
        assert!(error.column >= 1);
        assert!(error.to_string().contains("line 2"), "{error}");
    }
}
