# The host's CPython as nixpkgs' python3: `interpreter`, `sitePackages`, `pkgs` (numpy,
# pytest, hypothesis from Debian, `toPythonModule`) and `withPackages`, whose environment
# sees exactly the modules given and, transitively, the modules they propagate — not the host's
# dist-packages (the interpreter runs with -S and PYTHONPATH).
{ lib, final }:
let
  version = final.hostConfig.pythonVersion;
  sitePackages = "lib/python${version}/site-packages";

  interpreterPackage = final.runCommandLocal "python3-${version}" { } ''
    mkdir -p $out/bin $out/${sitePackages}
    ln -s /usr/bin/python${version} $out/bin/python${version}
    ln -s python${version} $out/bin/python3
    ln -s python${version} $out/bin/python
  '';

  # A Python package made of Debian packages' top-level entries in dist-packages.
  debianModule =
    pname: debs:
    toPythonModule (
      final.runCommandLocal "python3-${pname}" { inherit debs; } ''
        mkdir -p $out/${sitePackages}
        for deb in $debs; do
          /usr/bin/dpkg-query -L "$deb" >/dev/null || {
            echo "python3.pkgs.${pname} needs the Debian package $deb" >&2
            exit 1
          }
          /usr/bin/dpkg-query -L "$deb" | sed -n 's|^/usr/lib/python3/dist-packages/\([^/]*\)$|\1|p' \
            | while read -r entry; do
              ln -sfn "/usr/lib/python3/dist-packages/$entry" "$out/${sitePackages}/$entry"
            done
        done
      ''
      // {
        inherit pname;
      }
    );

  toPythonModule =
    drv:
    drv
    // {
      pythonModule = python3;
    };

  # requiredPythonModules: the modules and what they propagate, transitively.
  moduleClosure =
    modules:
    map (item: item.pkg) (
      builtins.genericClosure {
        startSet = map (p: {
          key = p.outPath;
          pkg = p;
        }) modules;
        operator =
          item:
          map (p: {
            key = p.outPath;
            pkg = p;
          }) (builtins.filter (p: p ? pythonModule) (item.pkg.propagatedBuildInputs or [ ]));
      }
    );

  python3 = interpreterPackage // {
    inherit version sitePackages;
    interpreter = "${interpreterPackage}/bin/python${version}";
    executable = "python${version}";
    pythonVersion = version;
    pkgs = {
      inherit toPythonModule;
      numpy = debianModule "numpy" [ "python3-numpy" ];
      hypothesis = debianModule "hypothesis" [
        # Its Depends in Debian sid (Dec 2026); no longer python3-attr.
        "python3-hypothesis"
        "python3-dateutil"
        "python3-sortedcontainers"
      ];
      pytest = debianModule "pytest" [
        "python3-pytest"
        "python3-pluggy"
        "python3-iniconfig"
        "python3-packaging"
        "python3-pygments"
      ];
    };
    withPackages =
      f:
      let
        modules = moduleClosure (f python3.pkgs);
      in
      final.runCommandLocal "python3-${version}-env" { } ''
        mkdir -p $out/bin
        for name in python python3 python${version}; do
          cat > $out/bin/$name <<WRAPPER
        #!${final.bash}/bin/bash
        export PYTHONPATH="${lib.concatMapStringsSep ":" (m: "${m}/${sitePackages}") modules}"
        exec /usr/bin/python${version} -S "\$@"
        WRAPPER
          chmod +x $out/bin/$name
        done
      '';
  };
in
python3
