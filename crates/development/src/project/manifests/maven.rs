//! Maven: pom.xml, read as XML events (coordinates, parent, modules, dependencies, main class).

use quick_xml::events::Event;

use crate::project::{Ecosystem, ManifestReader, Project};

pub(in crate::project) fn pom(
    reader: &mut ManifestReader<'_>,
    file: &str,
    source: &str,
) -> Result<Project, String> {
    let mut project = Project::new(Ecosystem::Maven, reader.manifest_name(file));
    let mut xml = quick_xml::Reader::from_str(source);
    let mut path: Vec<String> = Vec::new();
    let mut dependency: Vec<(String, String)> = Vec::new();
    let mut text = String::new();
    let (mut group, mut parent_group, mut parent_version) = (None, None, None);
    // Text is decoded by the document's declared version (1.1 normalises more line ends).
    let mut version = quick_xml::XmlVersion::Implicit1_0;
    loop {
        let event = xml
            .read_event()
            .map_err(|err| format!("invalid XML at byte {}: {err}", xml.error_position()))?;
        match event {
            Event::Decl(declaration) => {
                version = declaration
                    .xml_version()
                    .map_err(|err| format!("invalid XML declaration: {err}"))?;
            }
            Event::Start(start) => {
                path.push(String::from_utf8_lossy(start.local_name().as_ref()).into_owned());
                text.clear();
            }
            Event::Text(chunk) => {
                let chunk = chunk
                    .xml_content(version)
                    .map_err(|err| format!("invalid XML text: {err}"))?;
                text.push_str(&chunk);
            }
            // `&amp;` and friends arrive as their own events between text chunks.
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(ch)) => Some(ch),
                    _ => match &*reference {
                        b"amp" => Some('&'),
                        b"lt" => Some('<'),
                        b"gt" => Some('>'),
                        b"quot" => Some('"'),
                        b"apos" => Some('\''),
                        _ => None,
                    },
                };
                text.extend(resolved);
            }
            Event::End(_) => {
                let closed = path.join("/");
                let value = std::mem::take(&mut text).trim().to_owned();
                match closed.as_str() {
                    "project/artifactId" => project.name = Some(value),
                    "project/groupId" => group = Some(value),
                    "project/version" => project.version = Some(value),
                    "project/description" => project.description = Some(value),
                    "project/parent/groupId" => parent_group = Some(value),
                    "project/parent/version" => parent_version = Some(value),
                    "project/modules/module" => project.members.push(value),
                    "project/build/plugins/plugin/configuration/mainClass"
                    | "project/build/plugins/plugin/configuration/archive/manifest/mainClass" => {
                        project.entry("main_class", value.clone(), Some(value));
                    }
                    "project/dependencies/dependency"
                    | "project/dependencyManagement/dependencies/dependency" => {
                        let managed = closed.starts_with("project/dependencyManagement");
                        let field = |name: &str| {
                            dependency
                                .iter()
                                .find(|(key, _)| key == name)
                                .map(|(_, value)| value.clone())
                        };
                        let name = format!(
                            "{}:{}",
                            field("groupId").unwrap_or_default(),
                            field("artifactId").unwrap_or_default()
                        );
                        let kind = if managed {
                            "managed".to_owned()
                        } else {
                            field("scope").unwrap_or_else(|| "compile".to_owned())
                        };
                        project.dependency(name, field("version"), &kind);
                        dependency.clear();
                    }
                    other => {
                        if let Some(field) = other
                            .strip_prefix("project/dependencies/dependency/")
                            .or_else(|| {
                                other.strip_prefix(
                                    "project/dependencyManagement/dependencies/dependency/",
                                )
                            })
                        {
                            dependency.push((field.to_owned(), value));
                        }
                    }
                }
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if path.first().is_some_and(|root| root != "project") || project.name.is_none() {
        return Err("no <project><artifactId>; is this a Maven POM?".to_owned());
    }
    project.version = project.version.or(parent_version);
    if let Some(group) = group.or(parent_group) {
        project.name = project.name.map(|artifact| format!("{group}:{artifact}"));
    }
    Ok(project)
}
