# The example chain: a backend, and a frontend that calls it by its hash URL.
#
#   nix-build nix/example -A frontend                       # v1 (builds the backend too)
#   nix-build nix/example -A frontend --argstr version 2    # v2 frontend and v2 backend
#   nix-build nix/example -A frontend --argstr version 2 --argstr backendVersion 1
#                                                           # new frontend, same backend hash
#
# Without nixpkgs the servers run on the host's /usr/bin/python3 (the Debian test hosts); flake.nix
# passes the nixpkgs lib and "${pkgs.python3}/bin/python3" instead.
#
# The frontend calls BACKEND_URL through the ingress at $HASHD_INGRESS ("address:port") when that is
# set, else at the URL's own host and port (port 80 for the default http://<hash>.localhost/). For an
# ingress on another port, build with --arg ingressPort 8480 (the port goes into the URL, and so
# into the frontend's hash) or have the agent set HASHD_INGRESS in the service's environment.
{ hashd ? import ../lib.nix { }
, python3 ? "/usr/bin/python3"
, version ? "1"
, backendVersion ? version
, zone ? "localhost"
, ingressPort ? null
, system ? null
}:
let
  # Each closure carries its program: app/serve.py plus its own script, which imports serve.py
  # from its directory. `placeholder "out"` becomes the closure's own store path at build time.
  app = script: {
    exec = [ python3 "${placeholder "out"}/app/${script}" ];
    files = {
      "app/serve.py" = builtins.readFile ./serve.py;
      "app/${script}" = builtins.readFile (./. + "/${script}");
    };
  } // (if system == null then { } else { inherit system; });
in
rec {
  backend = hashd.mkService (app "backend.py" // {
    name = "example-backend";
    version = backendVersion;
    environment.VERSION = backendVersion;
  });

  frontend = hashd.mkService (app "frontend.py" // {
    name = "example-frontend";
    inherit version;
    readiness = { type = "http"; path = "/healthz"; };
    environment = {
      VERSION = version;
      BACKEND_URL = hashd.mkHashUrl { service = backend; inherit zone; port = ingressPort; };
    };
  });
}
