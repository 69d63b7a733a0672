"""The scale-out manifests (docker/k8s/) and the compose profile multi-worker, checked without a
cluster or a container engine.

Built-in kinds are validated against the Kubernetes JSON schemas that kubernetes-validate bundles
(offline, strict: an unknown field is an error). The TFJob is a custom resource with no schema
here: its pod templates are validated as PodTemplates, and its own fields by hand against the
training operator's kubeflow.org/v1 types. Then what no schema sees: that the manifests agree with
each other, with docker/compose.yaml, with the Dockerfile and with the app's configuration.
"""
import json
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from app import config as configuration
from app.__main__ import _parser as command_line
from tests.harness.environment import REPO_ROOT

K8S = REPO_ROOT / "docker" / "k8s"
COMPOSE_FILE = REPO_ROOT / "docker" / "compose.yaml"
IMAGE = "cifar10-appliance:latest"
PROFILE = "multi-worker"
TRAIN_DIR_CLAIM = "cifar10-train"


def documents(path: Path) -> list[dict]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def resources() -> list[dict]:
    return [document for path in sorted(K8S.glob("*.yaml")) if path.name != "kustomization.yaml"
            for document in documents(path)]


def one(kind: str) -> dict:
    [found] = [resource for resource in resources() if resource["kind"] == kind]
    return found


def pod_specs() -> dict[str, dict]:
    """Every pod template, by a name for messages: the Deployment's and each TFJob replica's."""
    specs = {"Deployment": one("Deployment")["spec"]["template"]}
    for replica_type, replica in one("TFJob")["spec"]["tfReplicaSpecs"].items():
        specs[f"TFJob {replica_type}"] = replica["template"]
    return specs


def containers() -> list[tuple[str, dict, dict]]:
    """(where, container, its pod spec) for every container of every pod template."""
    return [(f"{where}/{container['name']}", container, template["spec"])
            for where, template in pod_specs().items()
            for container in template["spec"]["containers"]]


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def profile_services() -> dict[str, dict]:
    """The profile's trainers: the services that are processes of the job (TF_CONFIG)."""
    return {name: service for name, service in compose()["services"].items()
            if PROFILE in service.get("profiles", [])
            and "TF_CONFIG" in service.get("environment", {})}


def tf_config(service: dict) -> dict:
    return json.loads(service["environment"]["TF_CONFIG"])


def config_for(environment: dict[str, str | None]) -> configuration.Config:
    """The configuration a container resolves from its environment; a variable that is only passed
    on from the shell (no value) gets its key's default, so the key itself is still checked."""
    defaults = configuration.load(None, [], {}).as_dict()
    resolved = {}
    for variable, value in environment.items():
        if not variable.startswith(configuration.OVERRIDE_PREFIX):
            continue
        if value is None:
            section, _, key = variable[len(configuration.OVERRIDE_PREFIX):].lower().partition("_")
            value = json.dumps(defaults.get(section, {}).get(key, ""))  # JSON is YAML
        resolved[variable] = str(value)
    return configuration.load(None, [], resolved)


def container_environment(container: dict) -> dict[str, str]:
    return {variable["name"]: variable["value"] for variable in container.get("env", [])}


# -- every file parses, and each resource is what Kubernetes accepts ------------------------------

def test_every_manifest_parses_and_names_its_kind():
    for resource in resources():
        assert {"apiVersion", "kind", "metadata"} <= resource.keys(), resource
        assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", resource["metadata"]["name"])


def test_kustomization_lists_every_manifest_in_the_folder():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    manifests = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(manifests)
    assert [image["name"] for image in kustomization["images"]] == [IMAGE.split(":")[0]]


# 1.27: the oldest Kubernetes that current releases of the training operator support.
@pytest.mark.parametrize("kubernetes_version", ["1.27", latest_version()])
def test_built_in_resources_validate_strictly(kubernetes_version):
    validated = []
    for resource in resources():
        if resource["apiVersion"].startswith("kubeflow.org/"):
            continue
        kubernetes_validate.validate(resource, kubernetes_version, strict=True)
        validated.append(resource["kind"])
    assert sorted(validated) == ["Deployment", "PersistentVolumeClaim", "Service"]


@pytest.mark.parametrize("kubernetes_version", ["1.27", latest_version()])
def test_tfjob_pod_templates_validate_as_pod_templates(kubernetes_version):
    for replica_type, replica in one("TFJob")["spec"]["tfReplicaSpecs"].items():
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "PodTemplate",
             "metadata": {"name": replica_type.lower()}, "template": replica["template"]},
            kubernetes_version, strict=True)


def test_validation_would_catch_a_misspelled_field():
    """The strict schemas reject what the API server would drop silently."""
    deployment = one("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []
    with pytest.raises(kubernetes_validate.ValidationError, match="volumeMount"):
        kubernetes_validate.validate(deployment, latest_version(), strict=True)


# -- the TFJob, by hand: only the fields of the training operator's kubeflow.org/v1 types ----------

TFJOB_SPEC_FIELDS = {"runPolicy", "successPolicy", "tfReplicaSpecs", "enableDynamicWorker"}
RUN_POLICY_FIELDS = {"cleanPodPolicy", "ttlSecondsAfterFinished", "activeDeadlineSeconds",
                     "backoffLimit", "schedulingPolicy", "suspend", "managedBy"}
REPLICA_SPEC_FIELDS = {"replicas", "template", "restartPolicy"}


def test_tfjob_uses_only_fields_of_the_v1_api():
    tfjob = one("TFJob")
    assert tfjob["apiVersion"] == "kubeflow.org/v1"
    assert set(tfjob["spec"]) <= TFJOB_SPEC_FIELDS
    assert set(tfjob["spec"]["runPolicy"]) <= RUN_POLICY_FIELDS
    assert tfjob["spec"]["runPolicy"]["cleanPodPolicy"] in ("None", "Running", "All")
    assert isinstance(tfjob["spec"]["runPolicy"]["backoffLimit"], int)
    assert set(tfjob["spec"]["tfReplicaSpecs"]) == {"Chief", "Worker"}
    for replica in tfjob["spec"]["tfReplicaSpecs"].values():
        assert set(replica) <= REPLICA_SPEC_FIELDS
        assert isinstance(replica["replicas"], int) and replica["replicas"] >= 1
    assert tfjob["spec"]["tfReplicaSpecs"]["Chief"]["replicas"] == 1


def test_tfjob_replicas_restart_on_failure():
    """OnFailure, not ExitCode: the survivors of a lost worker exit 1, which ExitCode counts as a
    permanent error that fails the job; OnFailure restarts them all, and they resume."""
    for replica in one("TFJob")["spec"]["tfReplicaSpecs"].values():
        assert replica["restartPolicy"] == "OnFailure"


def test_tfjob_containers_are_what_the_operator_looks_for():
    """The operator sets TF_CONFIG in the container named `tensorflow`, with the port of that
    container's port named `tfjob-port`."""
    for replica_type, template in pod_specs().items():
        if not replica_type.startswith("TFJob"):
            continue
        [container] = template["spec"]["containers"]
        assert container["name"] == "tensorflow"
        assert container["ports"] == [{"name": "tfjob-port", "containerPort": 2222}]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert container_environment(container)["CIFAR10_RUNTIME_STRATEGY"] == "multi_worker"
        assert "TF_CONFIG" not in container_environment(container)  # the operator's to set


def operator_tf_config(task_type: str, index: int, namespace: str = "ml") -> str:
    """TF_CONFIG as the training operator writes it for this TFJob (its genClusterSpec): one list
    of `<job>-<type>-<index>.<namespace>.svc:<port>` per replica type, keyed in lower case."""
    tfjob = one("TFJob")
    cluster = {}
    for replica_type, replica in tfjob["spec"]["tfReplicaSpecs"].items():
        [container] = replica["template"]["spec"]["containers"]
        port = {p["name"]: p["containerPort"] for p in container["ports"]}["tfjob-port"]
        cluster[replica_type.lower()] = [
            f"{tfjob['metadata']['name']}-{replica_type.lower()}-{i}.{namespace}.svc:{port}"
            for i in range(replica["replicas"])]
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index},
                       "environment": "cloud"})


def test_with_the_operators_tf_config_the_chief_task_is_the_only_chief(monkeypatch):
    from app.train import distribution
    workers = one("TFJob")["spec"]["tfReplicaSpecs"]["Worker"]["replicas"]
    tasks = [("chief", 0)] + [("worker", index) for index in range(workers)]
    chiefs = []
    for task_type, index in tasks:
        monkeypatch.setenv("TF_CONFIG", operator_tf_config(task_type, index))
        if distribution.is_chief():
            chiefs.append((task_type, index))
    assert chiefs == [("chief", 0)]


# -- the manifests agree with each other ----------------------------------------------------------

def test_the_shared_volume_is_one_read_write_many_claim():
    claim = one("PersistentVolumeClaim")
    assert claim["metadata"]["name"] == TRAIN_DIR_CLAIM
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    for where, template in pod_specs().items():
        claims = [volume["persistentVolumeClaim"]["claimName"]
                  for volume in template["spec"]["volumes"] if "persistentVolumeClaim" in volume]
        assert claims == [TRAIN_DIR_CLAIM], where


def test_every_mount_names_a_volume_of_its_pod():
    for where, container, pod in containers():
        volumes = {volume["name"] for volume in pod["volumes"]}
        for mount in container["volumeMounts"]:
            assert mount["name"] in volumes, f"{where}: {mount}"


def test_each_container_keeps_train_dir_and_data_dir_on_the_right_volumes():
    """What the app resolves from each container's environment is where the volumes are mounted:
    train_dir on the shared claim (else the chief would checkpoint into the container, and eval
    and TensorBoard would watch an empty folder), data_dir on a volume of its own."""
    for where, container, pod in containers():
        config = config_for(container_environment(container))
        claimed = {volume["name"] for volume in pod["volumes"] if "persistentVolumeClaim" in volume}
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        assert mounts.get(config.paths.train_dir) in claimed, where
        if not where.endswith("/tensorboard"):  # TensorBoard reads no data set
            assert config.paths.data_dir in mounts, where
            assert mounts[config.paths.data_dir] not in claimed, where


def test_every_cifar10_variable_is_a_real_config_key():
    """config.load refuses an unknown key, naming it: a typo here would stop the pod at start."""
    for where, container, _ in containers():
        config_for(container_environment(container))
    for name, service in profile_services().items():
        config_for(service["environment"])


def test_trainers_train_multi_worker_and_eval_and_tensorboard_do_not():
    for where, container, _ in containers():
        strategy = config_for(container_environment(container)).runtime.strategy
        assert (strategy == "multi_worker") == where.startswith("TFJob"), where


def test_the_service_selects_the_deployments_pods_and_no_trainer():
    service, deployment = one("Service"), one("Deployment")
    selector = service["spec"]["selector"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert selector.items() <= pod_labels.items()
    for where, template in pod_specs().items():
        if where.startswith("TFJob"):
            assert not selector.items() <= template["metadata"]["labels"].items(), where


def test_the_service_reaches_tensorboard_on_6006():
    service = one("Service")
    [port] = service["spec"]["ports"]
    assert port["port"] == 6006
    [tensorboard] = [container for where, container, _ in containers()
                     if where == "Deployment/tensorboard"]
    ports = {p["name"]: p["containerPort"] for p in tensorboard["ports"]}
    assert ports[port["targetPort"]] == 6006
    assert ports[tensorboard["readinessProbe"]["httpGet"]["port"]] == 6006
    assert config_for(container_environment(tensorboard)).tensorboard.port == 6006


def test_every_container_runs_one_role_through_the_images_entrypoint():
    entrypoint = re.search(r'^ENTRYPOINT \["([^"]+)"\]', (REPO_ROOT / "Dockerfile").read_text(),
                           re.MULTILINE).group(1)
    for where, container, _ in containers():
        program, role = container["command"]
        assert program == entrypoint, where
        assert role == ("train" if where.startswith("TFJob") else container["name"]), where
        command_line().parse_args([role])  # a command of `python -m app`, or SystemExit


def test_one_image_everywhere():
    images = {where: container["image"] for where, container, _ in containers()}
    images.update({f"compose {name}": service["image"]
                   for name, service in compose()["services"].items()})
    assert set(images.values()) == {IMAGE}, images


# -- the compose profile --------------------------------------------------------------------------

def test_the_profile_leaves_a_plain_compose_up_alone():
    services = compose()["services"]
    assert set(profile_services()) == {"chief", "worker"}
    in_the_profile = {name for name, service in services.items()
                      if PROFILE in service.get("profiles", [])}
    assert in_the_profile == {"chief", "worker", "eval", "tensorboard"}
    always_started = {name for name, service in services.items() if not service.get("profiles")}
    assert always_started == {"appliance"}


def test_the_profiles_trainers_restart_on_failure_and_eval_and_tensorboard_whatever_happens():
    services = compose()["services"]
    for name in profile_services():
        assert re.fullmatch(r"on-failure:\d+", services[name]["restart"]), name
        assert "depends_on" not in services[name], f"{name}: stopped after the other, not with it"
    for name in ("eval", "tensorboard"):
        assert services[name]["restart"] == "unless-stopped", name
        assert "depends_on" not in services[name], f"{name} must not go with the chief"


def test_the_profiles_tf_configs_form_one_cluster_of_both_services():
    services = profile_services()
    configs = {name: tf_config(service) for name, service in services.items()}
    clusters = {json.dumps(config["cluster"], sort_keys=True) for config in configs.values()}
    assert len(clusters) == 1, "both trainers must see the same cluster"
    cluster = next(iter(configs.values()))["cluster"]
    assert list(cluster) == ["worker"]
    hosts, ports = zip(*(address.split(":") for address in cluster["worker"]))
    assert sorted(hosts) == sorted(services) and set(ports) == {"2222"}
    for name, config in configs.items():
        assert config["task"]["type"] == "worker"
        assert cluster["worker"][config["task"]["index"]] == f"{name}:2222", \
            f"{name}'s task index must point at its own address"
    assert sorted(config["task"]["index"] for config in configs.values()) == [0, 1]
    assert configs["chief"]["task"]["index"] == 0  # worker 0 of a cluster without a chief task


def test_in_the_profile_exactly_the_chief_service_is_chief(monkeypatch):
    from app.train import distribution
    chiefs = []
    for name, service in profile_services().items():
        monkeypatch.setenv("TF_CONFIG", service["environment"]["TF_CONFIG"])
        if distribution.is_chief():
            chiefs.append(name)
    assert chiefs == ["chief"]


def test_the_profiles_trainers_share_the_appliances_folders_image_and_build():
    def sources(service):  # where each folder inside the container comes from
        return dict(reversed(volume.split(":")[:2]) for volume in service["volumes"])
    appliance = compose()["services"]["appliance"]
    for name, service in profile_services().items():
        config = config_for(service["environment"])
        assert service["command"] == ["train"], name
        assert config.runtime.strategy == "multi_worker", name
        for folder in (config.paths.train_dir, config.paths.data_dir):
            assert sources(service)[folder] == sources(appliance)[folder], f"{name}: {folder}"
        assert service["build"] == appliance["build"], name
        assert service["image"] == appliance["image"], name


def test_the_profiles_trainers_get_different_gpus_by_default():
    def default_gpu(service):
        [device] = service["deploy"]["resources"]["reservations"]["devices"]
        [device_id] = device["device_ids"]
        return re.fullmatch(r"\$\{\w+:-(\w+)\}", device_id).group(1)
    gpus = [default_gpu(service) for service in profile_services().values()]
    assert sorted(gpus) == ["0", "1"]


# -- kustomize, where kubectl is installed (it is on CI's machines) --------------------------------

@pytest.fixture
def kubectl():
    found = shutil.which("kubectl")
    if found is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    return found


def kustomize(kubectl: str, folder: Path) -> list[dict]:
    result = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def test_kustomize_builds_the_folder(kubectl):
    built = kustomize(kubectl, K8S)
    assert sorted(resource["kind"] for resource in built) == sorted(
        resource["kind"] for resource in resources())


def test_an_overlay_sets_the_image_of_every_container_the_tfjobs_included(kubectl, tmp_path):
    shutil.copytree(K8S, tmp_path / "base")
    (tmp_path / "overlay").mkdir()
    (tmp_path / "overlay" / "kustomization.yaml").write_text(
        "resources: [../base]\n"
        "images:\n"
        "  - name: cifar10-appliance\n"
        "    newName: registry.example.com/ml/cifar10-appliance\n"
        "    newTag: '0.1.0'\n")
    text = yaml.safe_dump_all(kustomize(kubectl, tmp_path / "overlay"))
    images = re.findall(r"image: (\S+)", text)
    assert len(images) == len(containers())
    assert set(images) == {"registry.example.com/ml/cifar10-appliance:0.1.0"}
