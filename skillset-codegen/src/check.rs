//! Structural validation of a generated skillset file (`skillset --validate M`).
//!
//! The file is parsed with `syn` and every item the model type needs is looked for:
//! the struct, the info static with the right `model_type`, every task and every
//! backend, the `Skillset` impl and one `Supports` impl per task.

use syn::{Expr, Item, Lit, Type};

use crate::names::{rust_type_name, Backend};
use crate::schema::ModelTypeEntry;

/// Fields every `ModelTypeInfo` literal has.
pub const INFO_FIELDS: &[&str] = &[
    "model_type",
    "type_name",
    "config_class",
    "display_name",
    "modality",
    "family",
    "hf_tasks",
    "tasks",
    "backends",
    "transformers_version",
];

/// Why a generated file is not a valid skillset for its model type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("does not parse as Rust: {0}")]
    Parse(String),
    #[error("{}", .0.join("; "))]
    Missing(Vec<String>),
}

/// Check the source of a generated file against the model type's metadata.
pub fn check_file(source: &str, entry: &ModelTypeEntry) -> Result<(), CheckError> {
    let file = syn::parse_file(source).map_err(|e| {
        let at = e.span().start();
        CheckError::Parse(format!("line {}, column {}: {e}", at.line, at.column + 1))
    })?;
    let name = rust_type_name(&entry.model_type);
    let mut missing = Vec::new();

    if !file
        .items
        .iter()
        .any(|i| matches!(i, Item::Struct(s) if s.ident == name))
    {
        missing.push(format!("missing `pub struct {name}`"));
    }

    // The info static.
    let info = file.items.iter().find_map(|i| match i {
        Item::Static(s) if type_is(&s.ty, "ModelTypeInfo") => Some(&*s.expr),
        Item::Const(c) if type_is(&c.ty, "ModelTypeInfo") => Some(&*c.expr),
        _ => None,
    });
    match info {
        None => missing.push("missing the `ModelTypeInfo` static".to_string()),
        Some(Expr::Struct(lit)) => {
            let field = |n: &str| {
                lit.fields.iter().find(|f| match &f.member {
                    syn::Member::Named(id) => id == n,
                    _ => false,
                })
            };
            for f in INFO_FIELDS {
                if field(f).is_none() {
                    missing.push(format!("missing field `{f}` in the `ModelTypeInfo` static"));
                }
            }
            if let Some(f) = field("model_type") {
                match str_lit(&f.expr) {
                    Some(v) if v == entry.model_type => {}
                    Some(v) => missing.push(format!(
                        "`model_type` is `{v}`, expected `{}`",
                        entry.model_type
                    )),
                    None => missing.push("`model_type` is not a string literal".into()),
                }
            }
            if let Some(f) = field("tasks") {
                let paths = paths_in(&f.expr);
                for task in &entry.skillset_tasks {
                    if !paths.iter().any(|p| p == task.rust_name()) {
                        missing.push(format!(
                            "missing task `Task::{}` in `tasks`",
                            task.rust_name()
                        ));
                    }
                }
            }
            if let Some(f) = field("backends") {
                let paths = paths_in(&f.expr);
                for backend in Backend::ALL {
                    if !paths.iter().any(|p| p == backend.rust_name()) {
                        missing.push(format!(
                            "missing backend `Backend::{}` in `backends`",
                            backend.rust_name()
                        ));
                    }
                }
            }
        }
        Some(_) => missing.push("the `ModelTypeInfo` static is not a struct literal".into()),
    }

    // The impls.
    let impls: Vec<(String, String)> = file
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Impl(imp) => {
                let (_, path, _) = imp.trait_.as_ref()?;
                let self_ty = type_last_ident(&imp.self_ty)?;
                let last = path.segments.last()?;
                let arg = match &last.arguments {
                    syn::PathArguments::AngleBracketed(a) => a.args.first().and_then(|g| match g {
                        syn::GenericArgument::Type(t) => type_last_ident(t),
                        _ => None,
                    }),
                    _ => None,
                };
                let tr = match arg {
                    Some(a) => format!("{}<{a}>", last.ident),
                    None => last.ident.to_string(),
                };
                Some((tr, self_ty))
            }
            _ => None,
        })
        .collect();
    let has = |tr: &str| impls.iter().any(|(t, s)| t == tr && *s == name);
    if !has("Skillset") {
        missing.push(format!("missing `impl Skillset for {name}`"));
    }
    for task in &entry.skillset_tasks {
        let tr = format!("Supports<{}>", task.rust_name());
        if !has(&tr) {
            missing.push(format!(
                "missing `impl Supports<task::{}> for {name}`",
                task.rust_name()
            ));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(CheckError::Missing(missing))
    }
}

fn type_is(ty: &Type, name: &str) -> bool {
    type_last_ident(ty).as_deref() == Some(name)
}

fn type_last_ident(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        Type::Reference(r) => type_last_ident(&r.elem),
        _ => None,
    }
}

fn str_lit(e: &Expr) -> Option<String> {
    match e {
        Expr::Lit(l) => match &l.lit {
            Lit::Str(s) => Some(s.value()),
            _ => None,
        },
        _ => None,
    }
}

/// The last segment of every path expression inside `e` (`Task::FillMask` -> `FillMask`).
fn paths_in(e: &Expr) -> Vec<String> {
    let mut out = Vec::new();
    collect_paths(e, &mut out);
    out
}

fn collect_paths(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Path(p) => {
            if let Some(s) = p.path.segments.last() {
                out.push(s.ident.to_string());
            }
        }
        Expr::Reference(r) => collect_paths(&r.expr, out),
        Expr::Array(a) => a.elems.iter().for_each(|x| collect_paths(x, out)),
        Expr::Tuple(t) => t.elems.iter().for_each(|x| collect_paths(x, out)),
        Expr::Paren(p) => collect_paths(&p.expr, out),
        Expr::Group(g) => collect_paths(&g.expr, out),
        _ => {}
    }
}
