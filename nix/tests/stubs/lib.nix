# Stand-in for the few nixpkgs `lib` functions the flake uses, with nixpkgs' names and
# semantics, builtins only. Filesets are modelled as lists of absolute file names so the
# wiring test can check which files each derivation's source contains.
let
  inherit (builtins)
    attrNames
    concatLists
    concatStringsSep
    filter
    isAttrs
    isList
    isPath
    map
    pathExists
    readDir
    replaceStrings
    stringLength
    substring
    toString
    ;

  hasPrefix = prefix: s: substring 0 (stringLength prefix) s == prefix;
  hasSuffix =
    suffix: s:
    let
      ls = stringLength s;
      lx = stringLength suffix;
    in
    ls >= lx && substring (ls - lx) lx s == suffix;
  removePrefix' = prefix: s: if hasPrefix prefix s then substring (stringLength prefix) (stringLength s) s else s;
  removeSuffix =
    suffix: s: if hasSuffix suffix s then substring 0 (stringLength s - stringLength suffix) s else s;

  # Directories a git checkout has but a flake source never contains (untracked, ignored).
  ignoredNames = [
    ".git"
    "target"
    "dist"
    "result"
    "__pycache__"
  ];
  ignored = name: builtins.elem name ignoredNames || hasPrefix ".venv" name;

  # Every file below `path` (a path value), as path values.
  filesUnder =
    path:
    let
      type = (readDir (builtins.dirOf path)).${builtins.baseNameOf path} or null;
    in
    if !(pathExists path) then
      throw "lib.fileset: ${toString path} does not exist"
    else if type == "directory" || type == null then
      concatLists (
        map (
          name:
          let
            entryType = (readDir path).${name};
            child = path + "/${name}";
          in
          if ignored name then
            [ ]
          else if entryType == "directory" then
            filesUnder child
          else
            [ child ]
        ) (attrNames (readDir path))
      )
    else
      [ path ];

  mkFileset = files: {
    _type = "fileset";
    _files = files;
  };
  coerce =
    value:
    if isAttrs value && (value._type or null) == "fileset" then
      value
    else if isPath value then
      mkFileset (filesUnder value)
    else
      throw "lib.fileset: expected a path or a fileset, got ${builtins.typeOf value}";

  uniqueStrings = list: attrNames (builtins.listToAttrs (map (s: { name = s; value = null; }) list));
in
{
  inherit hasPrefix hasSuffix removeSuffix;
  removePrefix = removePrefix';

  fileset = {
    unions =
      list:
      assert isList list;
      mkFileset (concatLists (map (v: (coerce v)._files) list));
    maybeMissing = path: if pathExists path then coerce path else mkFileset [ ];
    fileFilter =
      predicate: path:
      mkFileset (
        filter (
          file:
          let
            name = builtins.baseNameOf file;
            parts = builtins.match "(.*)\\.([^.]*)" name;
          in
          predicate {
            inherit name;
            type = "regular";
            hasExt = ext: parts != null && builtins.elemAt parts 1 == ext;
          }
        ) (filesUnder path)
      );
    toList = fs: (coerce fs)._files;
    toSource =
      { root, fileset }:
      let
        files = uniqueStrings (map toString (coerce fileset)._files);
        outside = filter (f: !(hasPrefix "${toString root}/" f)) files;
      in
      if outside != [ ] then
        throw "lib.fileset.toSource: files outside root: ${concatStringsSep ", " outside}"
      else
        # Like the real result (lib.cleanSourceWith): a source path, not a derivation, so
        # crane may read Cargo.toml/Cargo.lock from it without import from derivation.
        {
          _isLibCleanSourceWith = true;
          origSrc = root;
          name = "source";
          outPath = "/nix/store/00000000000000000000000000000000-source";
          # Relative names, the wiring test's view of the source.
          sourceFiles = map (f: removePrefix' "${toString root}/" f) files;
        };
  };

  path.removePrefix =
    root: path:
    assert isPath root && isPath path;
    "./${removePrefix' "${toString root}/" (toString path)}";

  genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
  filter = builtins.filter;
  inherit concatStringsSep;
  optional = cond: x: if cond then [ x ] else [ ];
  optionalString = cond: s: if cond then s else "";
  optionalAttrs = cond: attrs: if cond then attrs else { };
  optionals = cond: list: if cond then list else [ ];
  concatMapStrings = f: list: concatStringsSep "" (map f list);
  escapeShellArg = s: "'${replaceStrings [ "'" ] [ "'\\''" ] (toString s)}'";
}
