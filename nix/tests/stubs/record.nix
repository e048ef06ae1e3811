# A recording stand-in for a derivation: what was called, and with which arguments.
fn: name: args: {
  type = "derivation";
  inherit name;
  outPath = "/nix/store/00000000000000000000000000000000-${name}";
  recorded = { inherit fn args; };
}
