//! Go: go.mod (module, toolchain, direct and indirect requirements, commands) and go.work.

use crate::project::{Ecosystem, ManifestReader, Project};

/// go.mod / go.work directives: `keyword args` and `keyword ( args... )` blocks.
fn go_directives(text: &str) -> Vec<(String, String)> {
    let mut directives = Vec::new();
    let mut block: Option<String> = None;
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        if let Some(keyword) = &block {
            if line == ")" {
                block = None;
            } else {
                directives.push((keyword.clone(), line.to_owned()));
            }
            continue;
        }
        let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        if rest == "(" {
            block = Some(keyword.to_owned());
        } else {
            directives.push((keyword.to_owned(), rest.to_owned()));
        }
    }
    directives
}

pub(in crate::project) fn go_mod(
    reader: &mut ManifestReader<'_>,
    file: &str,
    text: &str,
) -> Result<Project, String> {
    let mut project = Project::new(Ecosystem::Go, reader.manifest_name(file));
    // `// indirect` is a comment, so look at raw lines for it.
    let indirect: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("// indirect"))
        .filter_map(|line| line.split_whitespace().find(|word| *word != "require"))
        .collect();
    for (keyword, args) in go_directives(text) {
        let mut words = args.split_whitespace();
        match keyword.as_str() {
            "module" => project.name = words.next().map(|name| name.trim_matches('"').to_owned()),
            "go" | "toolchain" => project.dependency(
                keyword.as_str(),
                words.next().map(str::to_owned),
                "toolchain",
            ),
            "require" => {
                if let Some(path) = words.next() {
                    let kind = if indirect.contains(&path) {
                        "indirect"
                    } else {
                        "normal"
                    };
                    project.dependency(path, words.next().map(str::to_owned), kind);
                }
            }
            _ => {}
        }
    }
    if project.name.is_none() {
        return Err("no `module` directive".to_owned());
    }
    if reader.exists("main.go") {
        let name = project
            .name
            .as_deref()
            .and_then(|n| n.rsplit('/').next())
            .unwrap_or_default()
            .to_owned();
        project.entry("binary", name, Some("main.go".to_owned()));
    }
    for command in reader.expand_members(["cmd/*"]) {
        let name = command.trim_start_matches("cmd/").to_owned();
        project.entry("binary", name, Some(command));
    }
    Ok(project)
}

pub(in crate::project) fn go_work(
    reader: &mut ManifestReader<'_>,
    file: &str,
    text: &str,
) -> Result<Project, String> {
    let mut project = Project::new(Ecosystem::Go, reader.manifest_name(file));
    let uses: Vec<String> = go_directives(text)
        .into_iter()
        .filter(|(keyword, _)| keyword == "use")
        .map(|(_, dir)| dir)
        .collect();
    project.members = reader.expand_members(uses.iter().map(String::as_str));
    Ok(project)
}
