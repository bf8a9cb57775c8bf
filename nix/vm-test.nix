# The flake's checks.<system>.vm: a NixOS test (pkgs.testers.runNixOSTest) with two hashd hosts in one
# cluster and a deployer. The deployer signs the example chain (nix/example) and `hashd deploy`s it
# to both hosts over SSH with --alias prod; the test curls prod through each host's ingress,
# deploys v2 and switches prod to it, sees v2 answer on both, and sees v1 retire on both, frontend
# and backend.
#
# It needs nixpkgs and a machine that runs VMs (`nix flake check` on NixOS or any Linux with KVM).
# Where hashd is developed there is neither (no binary cache), so it has not run there: its nodes
# are evaluated with nixpkgs' lib.evalModules and stand-ins for the NixOS options they set, and the
# test script is checked to be Python (test/readme-nix.test.ts).
#
# The keys below are for this test only, like nixpkgs' snakeoil keys: the SSH key is nixpkgs'
# (nixos/tests/ssh-keys.nix), the Nix signing key and the cluster key were made for this file.
{
  pkgs,
  hashdModule, # nixos-module/, with the package set
  hashd, # the package, for the deployer's CLI
  example, # { v1 = { backend, frontend }; v2 = { ... }; } (nix/example)
  sshKeys, # nixpkgs' nixos/tests/ssh-keys.nix
}:
let
  signingKey = "hashd-vm-test-1:tpPwcWdAph8VGkRTVNdPBwP3DuJ2IQwyIb2tU77vrELZ6oeoJV/zrOY8rFIs/plqOtUmK7YaDoEyfHTBkbTbBQ==";
  signingPublicKey = "hashd-vm-test-1:2eqHqCVf86zmPKxSLP6ZajrVJiu2Gg6BMnx0wZG02wU=";
  clusterKey = "yXXLpa1CQdihNvSk5nffo5dMX9oNDGcIyZm7yVZNRWU=";
  signingKeyCredential = "hashd-vm-test example signing key";

  host =
    { config, nodes, ... }:
    {
      imports = [ hashdModule ];
      services.hashd = {
        enable = true;
        clusterKeyFile = "/etc/hashd-test/cluster.key";
        trustedPublicKeys = [ signingPublicKey ];
        openFirewall = true;
        settings.gossip = {
          # each host lists both: whichever starts first finds the other later
          seeds = map (name: "${nodes.${name}.networking.primaryIPAddress}:7946") [
            "web1"
            "web2"
          ];
          # the test network's address, not the first one (QEMU's user network, the same on every VM)
          advertise = config.networking.primaryIPAddress;
        };
      };
      # a root-only copy in /etc, not a link into the store (the module refuses store paths)
      environment.etc."hashd-test/cluster.key" = {
        text = clusterKey;
        mode = "0400";
      };
      # the example backend's credential (nix/example: credentials = [ "signing-key" ]), made the
      # same way; a real host would use agenix, sops-nix or systemd-creds
      services.hashd.credentials.example-backend.signing-key = "/etc/hashd-test/signing-key";
      environment.etc."hashd-test/signing-key" = {
        text = signingKeyCredential;
        mode = "0400";
      };
      services.openssh.enable = true;
      users.users.root.openssh.authorizedKeys.keys = [ sshKeys.snakeOilPublicKey ];
      environment.systemPackages = [ pkgs.jq ];
      virtualisation.memorySize = 1536;
    };
in
{
  name = "hashd";

  nodes = {
    web1 = host;
    web2 = host;
    deployer =
      { ... }:
      {
        environment.systemPackages = [
          hashd
          pkgs.jq
          pkgs.curl
        ];
        # the closures to deploy, in the deployer's store (and its database)
        system.extraDependencies = [
          example.v1.backend
          example.v1.frontend
          example.v2.backend
          example.v2.frontend
        ];
        programs.ssh.extraConfig = ''
          StrictHostKeyChecking no
          UserKnownHostsFile /dev/null
        '';
        environment.etc."hashd-test/signing.sec" = {
          text = signingKey;
          mode = "0400";
        };
        virtualisation.memorySize = 1536;
      };
  };

  testScript = ''
    import json

    v1_backend, v1_frontend = "${example.v1.backend}", "${example.v1.frontend}"
    v2_backend, v2_frontend = "${example.v2.backend}", "${example.v2.frontend}"
    hosts = (web1, web2)

    start_all()
    for h in hosts:
        h.wait_for_unit("hashd.service")
        h.wait_for_unit("sshd.service")
        h.wait_for_open_port(80)

    with subtest("the two agents are one cluster"):
        for h in hosts:
            h.wait_until_succeeds(
                "hashd members --json | jq -e '[.members[] | select(.state == \"alive\")] | length == 2'",
                timeout=60,
            )

    deployer.wait_for_unit("multi-user.target")
    deployer.succeed(
        "install -d -m 700 /root/.ssh",
        "install -m 600 ${sshKeys.snakeOilPrivateKey} /root/.ssh/id_ecdsa",
        "nix --extra-experimental-features nix-command store sign --recursive --key-file /etc/hashd-test/signing.sec "
        + " ".join([v1_frontend, v2_frontend]),
    )

    def deploy(path, alias=None):
        result = json.loads(deployer.succeed(
            f"hashd deploy {path} --to root@web1,root@web2 --json"
            + (f" --alias {alias}" if alias else "")
        ))
        assert result["ok"], result

    def prod(host):
        return json.loads(deployer.succeed(f"curl -sSf -H 'Host: prod.localhost' http://{host}/"))

    with subtest("v1 to both hosts, prod points at it"):
        deploy(v1_backend)
        deploy(v1_frontend, "prod")
        for name in ("web1", "web2"):
            answer = prod(name)
            assert answer["version"] == "1" and answer["backend"]["version"] == "1", answer

    with subtest("v2, and prod switched to it"):
        deploy(v2_backend)
        deploy(v2_frontend, "prod")
        for name in ("web1", "web2"):
            answer = prod(name)
            assert answer["version"] == "2" and answer["backend"]["version"] == "2", answer
            # v2's backend read the credential, and found the state v1's backend left (by name)
            assert answer["backend"]["signingKey"].startswith("sha256:"), answer
            assert answer["backend"]["stateCreatedBy"] == "1", answer

    with subtest("v1 retires on both hosts, frontend and backend"):
        for h in hosts:
            for path in (v1_frontend, v1_backend):
                h.wait_until_succeeds(
                    f"hashd show {path[len('${builtins.storeDir}/'):][:32]} --json"
                    + " | jq -e '.deployment.state == \"retired\"'",
                    timeout=120,
                )
        for name in ("web1", "web2"):
            assert prod(name)["version"] == "2"
  '';
}
