//! Parsing the attribute's arguments: `family = "..."` or `model_type = "..."`.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Lit, LitStr, Meta, Token};

/// The keys the attribute takes: one of `family` and `model_type`, and optionally
/// `crate` (the path of skillset-runtime in the user's crate).
pub const KEYS: &[&str] = &["family", "model_type", "crate"];

/// What the attribute asks for.
pub enum Target {
    Family(LitStr),
    ModelType(LitStr),
}

/// Collects every error instead of stopping at the first (serde_derive's `Ctxt`).
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, span: Span, message: impl std::fmt::Display) {
        let e = syn::Error::new(span, message);
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    pub fn push_error(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    pub fn into_compile_errors(self) -> TokenStream {
        self.0.map(|e| e.to_compile_error()).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

const USAGE: &str =
    "write `#[skillset(family = \"bert\")]` or `#[skillset(model_type = \"roberta\")]`";

/// Parse the arguments, reporting every mistake into `errors`: the target, and the
/// runtime's path when `crate = ...` names one.
pub fn parse(args: TokenStream, errors: &mut Errors) -> (Option<Target>, Option<syn::Path>) {
    let mut krate = None;
    let target = parse_target(args, errors, &mut krate);
    (target, krate)
}

fn parse_target(
    args: TokenStream,
    errors: &mut Errors,
    krate: &mut Option<syn::Path>,
) -> Option<Target> {
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args.clone()) {
        Ok(m) => m,
        Err(e) => {
            errors.push(
                e.span(),
                format!("cannot parse the arguments of #[skillset]: {e}; {USAGE}"),
            );
            return None;
        }
    };
    let mut family: Option<(syn::Path, LitStr)> = None;
    let mut model_type: Option<(syn::Path, LitStr)> = None;
    let mut seen: Vec<String> = Vec::new();
    for meta in metas {
        let path = meta.path().clone();
        let key = path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_else(|| quote::quote!(#path).to_string().replace(' ', ""));
        if !KEYS.contains(&key.as_str()) {
            let near = skillset_codegen::suggest(&key, KEYS.iter().copied());
            let hint = match near.first() {
                Some(k) => format!(" (did you mean `{k}`?)"),
                None => String::new(),
            };
            errors.push(
                path.span(),
                format!("unknown key `{key}`{hint}: #[skillset] takes `family` or `model_type`"),
            );
            continue;
        }
        if key == "crate" {
            if krate.is_some() {
                errors.push(path.span(), "duplicate key `crate`");
                continue;
            }
            match &meta {
                Meta::NameValue(syn::MetaNameValue {
                    value: Expr::Path(p),
                    ..
                }) => *krate = Some(p.path.clone()),
                Meta::NameValue(syn::MetaNameValue {
                    value:
                        Expr::Lit(syn::ExprLit {
                            lit: Lit::Str(s), ..
                        }),
                    ..
                }) => match s.parse::<syn::Path>() {
                    Ok(p) => *krate = Some(p),
                    Err(e) => errors.push(s.span(), format!("`crate` takes a path: {e}")),
                },
                other => errors.push(
                    other.span(),
                    "`crate` takes the path of skillset-runtime: write `crate = skillsets::runtime`",
                ),
            }
            continue;
        }
        let value = match &meta {
            Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(syn::ExprLit {
                    lit: Lit::Str(s), ..
                }) => Some(s.clone()),
                other => {
                    let found = match other {
                        Expr::Lit(l) => match &l.lit {
                            Lit::Int(_) => "an integer",
                            Lit::Float(_) => "a float",
                            Lit::Bool(_) => "a bool",
                            Lit::Char(_) => "a char",
                            Lit::ByteStr(_) => "a byte string",
                            _ => "a literal of another type",
                        },
                        Expr::Path(_) => "a path",
                        _ => "an expression",
                    };
                    errors.push(
                        other.span(),
                        format!("`{key}` takes a string literal, found {found}: write `{key} = \"...\"`"),
                    );
                    None
                }
            },
            _ => {
                errors.push(
                    meta.span(),
                    format!("`{key}` takes a value: write `{key} = \"...\"`"),
                );
                None
            }
        };
        if seen.contains(&key) {
            errors.push(path.span(), format!("duplicate key `{key}`"));
            continue;
        }
        seen.push(key.clone());
        let slot = if key == "family" {
            &mut family
        } else {
            &mut model_type
        };
        if let Some(v) = value {
            *slot = Some((path, v));
        }
    }
    match (family, model_type) {
        (Some(_), Some((path, _))) => {
            errors.push(
                path.span(),
                "`family` and `model_type` cannot be used together: a skillset is for one family or one model type",
            );
            None
        }
        (Some((_, f)), None) => Some(Target::Family(f)),
        (None, Some((_, m))) => Some(Target::ModelType(m)),
        (None, None) => {
            if errors.is_empty() {
                let span = if args.is_empty() {
                    Span::call_site()
                } else {
                    args.span()
                };
                errors.push(span, format!("missing key: {USAGE}"));
            }
            None
        }
    }
}
