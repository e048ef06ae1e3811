# dockerTools.buildLayeredImage: a docker-archive (gzip) with one layer per store path of
# the contents' closure and a last layer holding the contents linked into / plus what
# extraCommands made, and an image config with `created` and `config`. Built by
# docker-image.py; `cargo xtask nix-offline` reads the result with skopeo.
{ lib, final }:
{
  buildLayeredImage =
    {
      name,
      tag ? null,
      contents ? [ ],
      config ? { },
      created ? "1970-01-01T00:00:01Z",
      extraCommands ? "",
      ...
    }:
    let
      contentsList = if builtins.isList contents then contents else [ contents ];
    in
    final.runCommand "${name}.tar.gz"
      {
        nativeBuildInputs = [ final.python3 ];
        imageName = name;
        imageTag = if tag == null then "latest" else tag;
        imageConfig = builtins.toJSON config;
        inherit created extraCommands;
        contents = contentsList;
        exportReferencesGraph = [
          "closure"
          (final.writeText "${name}-contents" (lib.concatMapStringsSep "\n" toString contentsList))
        ];
        architecture = final.stdenv.hostPlatform.go.GOARCH or "amd64";
      }
      ''
        mkdir customisation
        for c in $contents; do
          cp -rsn --no-preserve=mode "$c/." customisation/
        done
        (cd customisation && eval "$extraCommands")
        python3 ${./docker-image.py} closure customisation $out
      '';
}
