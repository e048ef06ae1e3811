# OCI images of every server (nixpkgs dockerTools), mirroring `cargo xtask image` (issue 6):
# - `<server>-<variant>-image`: that variant's static binary;
# - `<server>-image` (tag `latest`): every variant plus the baseline-CPU launcher, which
#   execs the best variant this CPU can run (see crates/<launcher>/src/lib.rs).
# In-image layout, the launcher's: /opt/mcp/<variant>/<server> are the variant binaries,
# /usr/local/bin/<launcher> the launcher and /usr/local/bin/<server> the entrypoint
# (a symlink to the launcher, which reads the server name from argv[0]).
{
  pkgs,
  workspace,
  system,
  cratePackages,
  launcher,
  gitCommit,
  sourceDateEpoch,
}:
let
  inherit (pkgs) lib;
  variantNames = workspace.variantNamesFor system;
  created = workspace.isoDateTime sourceDateEpoch;
  publishedSystem = "x86_64-linux";
  nonRootUser = "65532";

  # A non-root user and nothing else: the binaries are static and need no other file.
  etcFiles = pkgs.runCommand "mcp-foundry-image-etc" { } ''
    mkdir -p $out/etc
    printf 'root:x:0:0:root:/root:/sbin/nologin\nmcp:x:${nonRootUser}:${nonRootUser}:mcp:/home/mcp:/sbin/nologin\n' > $out/etc/passwd
    printf 'root:x:0:\nmcp:x:${nonRootUser}:\n' > $out/etc/group
  '';

  labels = server: {
    "org.opencontainers.image.title" = server;
    "org.opencontainers.image.description" = workspace.crates.${server}.description;
    "org.opencontainers.image.version" = workspace.crates.${server}.version;
    "org.opencontainers.image.revision" = gitCommit;
    "org.opencontainers.image.source" = workspace.repository;
    "org.opencontainers.image.licenses" = workspace.license;
    "org.opencontainers.image.created" = created;
  };

  binaryOf = server: variant: "${cratePackages.${workspace.packageName server variant}}/bin/${server}";

  # The programs a server runs (`image-programs` in its Cargo.toml), statically linked, at
  # /usr/bin/<name>: on the PATH the server gives the commands it runs.
  programsOf =
    server:
    lib.concatMapStrings (program: ''
      mkdir -p $out/usr/bin
      ln -s ${pkgs.pkgsStatic.${program}}/bin/${program} $out/usr/bin/${program}
    '') workspace.crates.${server}.imagePrograms;

  mkImage =
    {
      server,
      tag,
      root,
      env ? [ ],
    }:
    pkgs.dockerTools.buildLayeredImage {
      name = server;
      inherit tag created;
      contents = [
        etcFiles
        root
      ];
      # A writable /tmp; everything else stays read-only for the non-root user.
      extraCommands = ''
        mkdir -p tmp home/mcp
        chmod 1777 tmp
      '';
      config = {
        Entrypoint = [ "/usr/local/bin/${server}" ];
        User = "${nonRootUser}:${nonRootUser}";
        WorkingDir = "/home/mcp";
        Env = env;
        Labels = labels server;
      };
    };

  variantImage =
    server: variant:
    mkImage {
      inherit server;
      tag = variant;
      root = pkgs.runCommand "${server}-${variant}-image-root" { } ''
        mkdir -p $out/usr/local/bin
        ln -s ${binaryOf server variant} $out/usr/local/bin/${server}
        ${programsOf server}
      '';
    };

  dispatchImage =
    server:
    mkImage {
      inherit server;
      tag = "latest";
      env = [ "MCP_FOUNDRY_SERVER=${server}" ];
      root = pkgs.runCommand "${server}-dispatch-image-root" { } ''
        mkdir -p $out/usr/local/bin
        ln -s ${launcher}/bin/${workspace.launcher} $out/usr/local/bin/${workspace.launcher}
        ln -s ${workspace.launcher} $out/usr/local/bin/${server}
        ${programsOf server}
        ${lib.concatMapStrings (variant: ''
          mkdir -p $out/opt/mcp/${variant}
          ln -s ${binaryOf server variant} $out/opt/mcp/${variant}/${server}
        '') variantNames}
      '';
    };

  variantImages = builtins.listToAttrs (
    builtins.concatMap (
      server:
      map (variant: {
        name = "${workspace.packageName server variant}-image";
        value = variantImage server variant;
      }) variantNames
    ) workspace.serverNames
  );

  # Without a launcher crate there is nothing to dispatch with: only the variant images.
  dispatchImages = lib.optionalAttrs (launcher != null) (
    workspace.genAttrs (map (s: "${s}-image") workspace.serverNames) (
      name: dispatchImage (lib.removeSuffix "-image" name)
    )
  );

  # skopeo refuses to run without a signature policy; images we built ourselves need none.
  skopeoPolicy = pkgs.writeText "skopeo-policy.json" (
    builtins.toJSON {
      default = [ { type = "insecureAcceptAnything"; } ];
    }
  );

  # Tags: the variant name and <variant>-<git sha> per variant image; `latest` and the git
  # sha for the dispatch image.
  pushList =
    builtins.concatMap (
      server:
      builtins.concatMap (variant: [
        {
          image = variantImages."${workspace.packageName server variant}-image";
          ref = "${server}:${variant}";
        }
        {
          image = variantImages."${workspace.packageName server variant}-image";
          ref = "${server}:${variant}-${gitCommit}";
        }
      ]) variantNames
      ++ lib.optionals (launcher != null) [
        {
          image = dispatchImages."${server}-image";
          ref = "${server}:latest";
        }
        {
          image = dispatchImages."${server}-image";
          ref = "${server}:${gitCommit}";
        }
      ]
    ) workspace.serverNames;

  pushImages = pkgs.writeShellApplication {
    name = "push-images";
    runtimeInputs = [ pkgs.skopeo ];
    # Decided here, not in the script: shellcheck (run by writeShellApplication) rejects a
    # comparison of two constants and the code after an unconditional exit.
    text =
      # Tags name no architecture: pushing another system's images under them would
      # replace the published x86_64 ones (a multi-arch index is not built yet).
      if system != publishedSystem then
        ''
          echo "push-images: only ${publishedSystem} images are published (tags name no architecture); this is ${system}" >&2
          exit 1
        ''
      else if gitCommit == "dirty" then
        ''
          echo "push-images: refusing to push images built from an uncommitted tree; commit first" >&2
          exit 1
        ''
      else
        ''
          registry="''${MCP_FOUNDRY_REGISTRY:?set MCP_FOUNDRY_REGISTRY to the repository prefix to push to, e.g. <registry-host>/<owner> (log in first: skopeo login <registry-host>)}"
          ${lib.concatMapStrings (entry: ''
            echo "pushing $registry/${entry.ref}" >&2
            skopeo --policy ${skopeoPolicy} copy --retry-times 3 \
              "docker-archive:${entry.image}" "docker://$registry/${entry.ref}"
          '') pushList}
        '';
  };
in
{
  inherit pushImages;
  packages = variantImages // dispatchImages;
  apps.push-images = {
    type = "app";
    program = "${pushImages}/bin/push-images";
    meta.description = "Push every image to $MCP_FOUNDRY_REGISTRY with skopeo";
  };
}
