//! The layers the workspace promises, checked on its sources: no file imports, directly or
//! through others, a file that imports it back (docs/ARCHITECTURE.md, "Layers"), and no
//! function takes so many arguments that clippy's limit has to be switched off.
//!
//! A file's imports are the module files its paths name (`use crate::state::channel::X`,
//! `super::ctx::Ctx`, `login::login(..)` for a child module `login`). Declaring a child
//! module (`mod login;`) is not an import; re-exporting from it (`pub use login::X`) is.
//! So a module's façade may re-export its children, and the children import each other,
//! never the façade.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// The source folders of the workspace's crates.
const CRATES: &[&str] = &[
    "src",
    "crates/proto/src",
    "crates/udp/src",
    "crates/client/src",
    "load-tester/src",
];

/// One crate's module files, by module path (`["handler", "login"]`).
struct Crate {
    root: PathBuf,
    files: BTreeMap<Vec<String>, PathBuf>,
    /// What each file re-exports (`pub use`), by name, as absolute paths; glob re-exports
    /// under `"*"`.
    reexports: BTreeMap<Vec<String>, BTreeMap<String, Vec<Vec<String>>>>,
    /// The names each file defines at its top level.
    defined: BTreeMap<Vec<String>, BTreeSet<String>>,
}

impl Crate {
    fn read(root: &Path) -> Crate {
        let mut files = BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    if path.file_name() != Some("bin".as_ref()) {
                        stack.push(path);
                    }
                    continue;
                }
                if path.extension() != Some("rs".as_ref()) {
                    continue;
                }
                // A binary's main.rs beside lib.rs is a crate of its own.
                if dir == root && path.ends_with("main.rs") && root.join("lib.rs").exists() {
                    continue;
                }
                let rel = path.strip_prefix(root).unwrap();
                let mut module: Vec<String> = rel
                    .with_extension("")
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                let last = module.last().cloned().unwrap_or_default();
                if last == "mod" || (module.len() == 1 && (last == "lib" || last == "main")) {
                    module.pop();
                }
                files.insert(module, path);
            }
        }
        let mut krate = Crate {
            root: root.to_path_buf(),
            files,
            reexports: BTreeMap::new(),
            defined: BTreeMap::new(),
        };
        for (module, path) in &krate.files {
            let text = std::fs::read_to_string(path).unwrap();
            let file =
                syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut defined = BTreeSet::new();
            let mut reexports: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
            for item in &file.items {
                let name = match item {
                    syn::Item::Fn(i) => Some(&i.sig.ident),
                    syn::Item::Struct(i) => Some(&i.ident),
                    syn::Item::Enum(i) => Some(&i.ident),
                    syn::Item::Const(i) => Some(&i.ident),
                    syn::Item::Static(i) => Some(&i.ident),
                    syn::Item::Type(i) => Some(&i.ident),
                    syn::Item::Trait(i) => Some(&i.ident),
                    syn::Item::Mod(i) => Some(&i.ident),
                    syn::Item::Macro(i) => i.ident.as_ref(),
                    syn::Item::Use(u) if !matches!(u.vis, syn::Visibility::Inherited) => {
                        let mut paths = Vec::new();
                        use_paths(&u.tree, &mut Vec::new(), &mut paths, true);
                        for (name, p) in paths {
                            if let Some(abs) = absolute(module, &file_children(&file), &[], &p) {
                                reexports.entry(name).or_default().push(abs);
                            }
                        }
                        None
                    }
                    _ => None,
                };
                if let Some(name) = name {
                    defined.insert(name.to_string());
                }
            }
            krate.defined.insert(module.clone(), defined);
            krate.reexports.insert(module.clone(), reexports);
        }
        krate
    }

    /// The module file that the item at `path` (absolute within the crate) is defined in:
    /// the longest prefix that is a file of its own, followed through what that file
    /// re-exports.
    fn file_of(&self, path: &[String]) -> Option<Vec<String>> {
        self.resolve(path, 8)
    }

    fn resolve(&self, path: &[String], depth: usize) -> Option<Vec<String>> {
        let file = (0..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|p| self.files.contains_key(p))?;
        let Some(name) = path.get(file.len()) else {
            return Some(file);
        };
        if depth == 0 || self.defined[&file].contains(name) {
            return Some(file);
        }
        let reexports = &self.reexports[&file];
        let rest = &path[file.len() + 1..];
        if let Some(targets) = reexports.get(name) {
            let target: Vec<String> = targets[0].iter().chain(rest).cloned().collect();
            return self.resolve(&target, depth - 1).or(Some(file));
        }
        for glob in reexports.get("*").into_iter().flatten() {
            let target: Vec<String> = glob.iter().chain(&path[file.len()..]).cloned().collect();
            if let Some(found) = self.resolve(&target, depth - 1) {
                if found != file && found.len() >= glob.len() {
                    return Some(found);
                }
            }
        }
        Some(file)
    }
}

/// Collects the module paths a file names.
struct Imports<'a> {
    krate: &'a Crate,
    /// The file's own module path.
    here: Vec<String>,
    /// Its child modules declared as files (`mod x;`).
    children: BTreeSet<String>,
    /// Inline modules entered (`mod tests { .. }`), whose `super` is still this file.
    inline: Vec<String>,
    found: BTreeSet<Vec<String>>,
}

/// The child modules a file declares as files of their own (`mod x;`).
fn file_children(file: &syn::File) -> BTreeSet<String> {
    file.items
        .iter()
        .filter_map(|i| match i {
            syn::Item::Mod(m) if m.content.is_none() => Some(m.ident.to_string()),
            _ => None,
        })
        .collect()
}

/// `segments`, named in the file of module `here` (inside its inline modules `inline`), as
/// a path from the crate root; `None` for a path outside the crate.
fn absolute(
    here: &[String],
    children: &BTreeSet<String>,
    inline: &[String],
    segments: &[String],
) -> Option<Vec<String>> {
    let first = segments.first()?;
    let mut base: Vec<String> = here.iter().chain(inline).cloned().collect();
    match first.as_str() {
        "crate" => Some(segments[1..].to_vec()),
        "self" => Some(base.iter().chain(&segments[1..]).cloned().collect()),
        "super" => {
            let mut rest = segments;
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
            Some(base.iter().chain(rest).cloned().collect())
        }
        name if inline.is_empty() && children.contains(name) => {
            Some(here.iter().chain(segments).cloned().collect())
        }
        _ => None,
    }
}

impl Imports<'_> {
    fn note(&mut self, segments: &[String]) {
        let Some(absolute) = absolute(&self.here, &self.children, &self.inline, segments) else {
            return;
        };
        if let Some(file) = self.krate.file_of(&absolute) {
            if file != self.here {
                self.found.insert(file);
            }
        }
    }
}

/// The paths a `use` tree names, each with the name it brings in (`"*"` for a glob); with
/// `modules`, a path naming a module through `self` keeps it.
fn use_paths(
    tree: &syn::UseTree,
    prefix: &mut Vec<String>,
    out: &mut Vec<(String, Vec<String>)>,
    modules: bool,
) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_paths(&p.tree, prefix, out, modules);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let mut v = prefix.clone();
            let name = if n.ident == "self" {
                prefix.last().cloned().unwrap_or_default()
            } else {
                v.push(n.ident.to_string());
                n.ident.to_string()
            };
            out.push((name, v));
        }
        syn::UseTree::Rename(r) => {
            let mut v = prefix.clone();
            if r.ident != "self" {
                v.push(r.ident.to_string());
            }
            out.push((r.rename.to_string(), v));
        }
        syn::UseTree::Glob(_) => out.push(("*".to_string(), prefix.clone())),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                use_paths(t, prefix, out, modules);
            }
        }
    }
}

impl<'ast> Visit<'ast> for Imports<'_> {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let mut paths = Vec::new();
        use_paths(&item.tree, &mut Vec::new(), &mut paths, false);
        for (_, p) in paths {
            self.note(&p);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if segments.len() > 1 {
            self.note(&segments);
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        match &item.content {
            Some(_) => {
                self.inline.push(item.ident.to_string());
                syn::visit::visit_item_mod(self, item);
                self.inline.pop();
            }
            None => {}
        }
    }
}

/// The files each file of `krate` imports.
fn graph(krate: &Crate) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut graph = BTreeMap::new();
    for (module, path) in &krate.files {
        let text = std::fs::read_to_string(path).unwrap();
        let file = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let children = file_children(&file);
        let mut imports = Imports {
            krate,
            here: module.clone(),
            children,
            inline: Vec::new(),
            found: BTreeSet::new(),
        };
        imports.visit_file(&file);
        graph.insert(module.clone(), imports.found);
    }
    graph
}

/// The import circles of `graph`: its strongly connected components of more than one file
/// (Tarjan's algorithm).
fn circles(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    struct Tarjan<'g> {
        graph: &'g BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'g Vec<String>, usize>,
        low: BTreeMap<&'g Vec<String>, usize>,
        stack: Vec<&'g Vec<String>>,
        on_stack: BTreeSet<&'g Vec<String>>,
        next: usize,
        found: Vec<Vec<Vec<String>>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g Vec<String>) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.found
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn no_file_imports_a_file_that_imports_it_back() {
    let mut report = Vec::new();
    for dir in CRATES {
        let krate = Crate::read(&workspace().join(dir));
        assert!(!krate.files.is_empty(), "no sources in {dir}");
        let graph = graph(&krate);
        let name = |m: &Vec<String>| {
            let path = &krate.files[m];
            path.strip_prefix(workspace())
                .unwrap_or(path)
                .display()
                .to_string()
        };
        for circle in circles(&graph) {
            report.push(format!("a circle of {} files:", circle.len()));
            for m in &circle {
                let within: Vec<String> = graph[m]
                    .iter()
                    .filter(|d| circle.contains(d))
                    .map(name)
                    .collect();
                report.push(format!("  {} imports {}", name(m), within.join(", ")));
            }
        }
    }
    assert!(report.is_empty(), "import circles:\n{}", report.join("\n"));
}

#[test]
fn the_checker_sees_a_circle_through_a_child_and_its_facade() {
    // A façade re-exporting its child, and the child importing the façade: a circle.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\n").unwrap();
    std::fs::write(src.join("a/mod.rs"), "mod c;\npub use c::C;\npub struct A;\n").unwrap();
    std::fs::write(src.join("a/c.rs"), "use super::A;\npub struct C;\n").unwrap();
    std::fs::write(src.join("b.rs"), "use crate::a::A;\n").unwrap();
    let krate = Crate::read(src);
    let found = circles(&graph(&krate));
    let a = vec!["a".to_string()];
    let c = vec!["a".to_string(), "c".to_string()];
    assert_eq!(found, vec![vec![a.clone(), c]]);
    // Without the re-export there is none.
    std::fs::write(src.join("a/mod.rs"), "mod c;\npub struct A;\n").unwrap();
    assert!(circles(&graph(&Crate::read(src))).is_empty());
}

#[test]
fn no_function_switches_off_the_argument_limit() {
    let mut found = Vec::new();
    for dir in CRATES.iter().chain(&["tests", "benches"]) {
        let krate = Crate::read(&workspace().join(dir));
        for path in krate.files.values() {
            let text = std::fs::read_to_string(path).unwrap();
            if path.ends_with("layers.rs") {
                continue;
            }
            for (n, line) in text.lines().enumerate() {
                if line.contains("too_many_arguments") {
                    found.push(format!("{}:{}", path.display(), n + 1));
                }
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}
