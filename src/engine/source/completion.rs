//! The result of code that V8 does not run as a plain script.
//!
//! A plain script's result is its completion value, which V8 computes: for
//! `if (ok) { 5 } else { 6 }` it is 5 or 6. Code with top-level `await` runs
//! inside an async function, and code with `import`/`export` as a module;
//! neither has a completion value, so [`capture`] computes one the same way.
//! Every expression statement outside nested functions also assigns its value
//! to a result variable, and a statement whose completion is `undefined`
//! when its body yields no value (`if`, the loops, `switch`, `try`, and a
//! `catch` block) first resets it to `undefined`. A `finally` block leaves
//! the value alone, as in the language. So adding an `await` to code never
//! changes what it answers.

use swc_core::common::util::take::Take;
use swc_core::common::{DUMMY_SP, Span};
use swc_core::ecma::ast::{
    AssignExpr, AssignOp, AssignTarget, BindingIdent, BlockStmt, Expr, ExprStmt, Ident, Lit,
    ModuleItem, Number, SimpleAssignTarget, Stmt, UnaryExpr, UnaryOp,
};

/// Rewrites `stmts`, a statement list at the top level of the code or inside
/// a block, so that `result` (which the caller declares) holds their
/// completion value once they have run.
pub(super) fn capture(stmts: &mut Vec<Stmt>, result: &Ident) {
    capture_in(stmts, result, Ok, |stmt| stmt);
}

/// [`capture`] for the body of a module; import and export declarations stay
/// as they are.
pub(super) fn capture_module(items: &mut Vec<ModuleItem>, result: &Ident) {
    let as_stmt = |item| match item {
        ModuleItem::Stmt(stmt) => Ok(stmt),
        declaration => Err(declaration),
    };
    capture_in(items, result, as_stmt, ModuleItem::Stmt);
}

fn capture_in<T>(
    items: &mut Vec<T>,
    result: &Ident,
    as_stmt: impl Fn(T) -> Result<Stmt, T>,
    from_stmt: impl Fn(Stmt) -> T,
) {
    let original = std::mem::take(items);
    items.reserve(original.len());
    for item in original {
        match as_stmt(item) {
            Ok(stmt) => {
                if resets(&stmt) {
                    items.push(from_stmt(assign(result, undefined())));
                }
                items.push(from_stmt(rewrite(stmt, result)));
            }
            Err(other) => items.push(other),
        }
    }
}

/// The statement with its expression statements assigning to `result`; a
/// compound statement that is the body of another (`if (a) for (…) x;`) is
/// wrapped in a block with its reset.
fn rewrite(stmt: Stmt, result: &Ident) -> Stmt {
    match stmt {
        Stmt::Expr(ExprStmt { span, expr }) => Stmt::Expr(ExprStmt {
            span,
            expr: Box::new(assign_expr(span, result, expr)),
        }),
        Stmt::Block(mut block) => {
            capture(&mut block.stmts, result);
            Stmt::Block(block)
        }
        Stmt::If(mut statement) => {
            rewrite_body(&mut statement.cons, result);
            if let Some(alt) = statement.alt.as_mut() {
                rewrite_body(alt, result);
            }
            Stmt::If(statement)
        }
        Stmt::While(mut statement) => {
            rewrite_body(&mut statement.body, result);
            Stmt::While(statement)
        }
        Stmt::DoWhile(mut statement) => {
            rewrite_body(&mut statement.body, result);
            Stmt::DoWhile(statement)
        }
        Stmt::For(mut statement) => {
            rewrite_body(&mut statement.body, result);
            Stmt::For(statement)
        }
        Stmt::ForIn(mut statement) => {
            rewrite_body(&mut statement.body, result);
            Stmt::ForIn(statement)
        }
        Stmt::ForOf(mut statement) => {
            rewrite_body(&mut statement.body, result);
            Stmt::ForOf(statement)
        }
        Stmt::Switch(mut statement) => {
            for case in &mut statement.cases {
                capture(&mut case.cons, result);
            }
            Stmt::Switch(statement)
        }
        Stmt::Try(mut statement) => {
            capture(&mut statement.block.stmts, result);
            if let Some(handler) = statement.handler.as_mut() {
                // A caught error discards what the try block had produced.
                capture(&mut handler.body.stmts, result);
                handler.body.stmts.insert(0, assign(result, undefined()));
            }
            Stmt::Try(statement)
        }
        // The reset, if the labelled statement needs one, was placed before
        // the label: `continue label` must name the loop itself.
        Stmt::Labeled(mut statement) => {
            *statement.body = rewrite(Take::take(&mut *statement.body), result);
            Stmt::Labeled(statement)
        }
        other => other,
    }
}

/// The body of a compound statement: a compound body that needs a reset is
/// wrapped in a block with it, since a body is one statement.
fn rewrite_body(body: &mut Stmt, result: &Ident) {
    let stmt = Take::take(body);
    *body = if resets(&stmt) {
        let rewritten = rewrite(stmt, result);
        Stmt::Block(BlockStmt {
            span: DUMMY_SP,
            stmts: vec![assign(result, undefined()), rewritten],
            ..Default::default()
        })
    } else {
        rewrite(stmt, result)
    };
}

/// Whether the statement's completion is `undefined` (rather than the value
/// before it) when its body yields none, looking through labels.
fn resets(stmt: &Stmt) -> bool {
    match stmt {
        Stmt::If(_)
        | Stmt::While(_)
        | Stmt::DoWhile(_)
        | Stmt::For(_)
        | Stmt::ForIn(_)
        | Stmt::ForOf(_)
        | Stmt::Switch(_)
        | Stmt::Try(_) => true,
        Stmt::Labeled(statement) => resets(&statement.body),
        _ => false,
    }
}

fn undefined() -> Box<Expr> {
    Box::new(Expr::Unary(UnaryExpr {
        span: DUMMY_SP,
        op: UnaryOp::Void,
        arg: Box::new(Expr::Lit(Lit::Num(Number {
            span: DUMMY_SP,
            value: 0.0,
            raw: None,
        }))),
    }))
}

fn assign_expr(span: Span, result: &Ident, value: Box<Expr>) -> Expr {
    Expr::Assign(AssignExpr {
        span,
        op: AssignOp::Assign,
        left: AssignTarget::Simple(SimpleAssignTarget::Ident(BindingIdent::from(
            result.clone(),
        ))),
        right: value,
    })
}

fn assign(result: &Ident, value: Box<Expr>) -> Stmt {
    Stmt::Expr(ExprStmt {
        span: DUMMY_SP,
        expr: Box::new(assign_expr(DUMMY_SP, result, value)),
    })
}
