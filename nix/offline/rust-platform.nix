# nixpkgs' makeRustPlatform, reduced to what crane uses it for (crane-utils):
# buildRustPackage with `cargoLock.lockFile`, crates vendored through fetchurl.
{ lib, final }:
{ rustc, cargo, ... }:
{
  buildRustPackage =
    {
      pname,
      version,
      src,
      cargoLock,
      cargoBuildFlags ? [ ],
      nativeBuildInputs ? [ ],
      doCheck ? true,
      ...
    }@args:
    let
      lock = builtins.fromTOML (builtins.readFile cargoLock.lockFile);
      crates = builtins.filter (p: p ? checksum) (lock.package or [ ]);
      tarball =
        p:
        final.fetchurl {
          name = "cargo-src-${p.name}-${p.version}";
          url = "https://crates.io/api/v1/crates/${p.name}/${p.version}/download";
          sha256 = p.checksum;
        };
      vendor = final.runCommandLocal "${pname}-${version}-vendor" { } ''
        mkdir -p $out
        ${lib.concatMapStrings (p: ''
          mkdir -p $out/${p.name}-${p.version}
          tar -xzf ${tarball p} -C $out/${p.name}-${p.version} --strip-components=1 --no-same-owner
          echo '{"files":{},"package":"${p.checksum}"}' > $out/${p.name}-${p.version}/.cargo-checksum.json
        '') crates}
      '';
    in
    final.stdenv.mkDerivation (
      builtins.removeAttrs args [ "cargoLock" ]
      // {
        nativeBuildInputs = nativeBuildInputs ++ [
          rustc
          cargo
        ];
        inherit doCheck;
        cargoVendor = vendor;
        configurePhase = ''
          runHook preConfigure
          mkdir -p .cargo
          cat > .cargo/config.toml <<EOF
          [source.crates-io]
          replace-with = "vendored"
          [source.vendored]
          directory = "$cargoVendor"
          EOF
          cp ${cargoLock.lockFile} Cargo.lock
          runHook postConfigure
        '';
        buildPhase = ''
          runHook preBuild
          cargo build --release --offline --locked ${toString cargoBuildFlags}
          runHook postBuild
        '';
        checkPhase = ''
          runHook preCheck
          cargo test --release --offline --locked ${toString cargoBuildFlags}
          runHook postCheck
        '';
        installPhase = ''
          runHook preInstall
          mkdir -p $out/bin
          find target/release -maxdepth 1 -type f -executable -exec cp {} $out/bin/ \;
          runHook postInstall
        '';
      }
    );
}
