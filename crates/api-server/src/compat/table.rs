//! THE table of behaviour that changed between Engine API versions, from
//! `../shared/spec/engine-api-CHANGELOG.md` (v1.24 to v1.55) and moby's routers.
//!
//! Each [`Change`] is one row of [`row`]: the version from which the new behaviour applies and
//! what it is. A request served at version `v` has the behaviour of every row with
//! `since <= v` ([`Behaviour::has`]); older requests keep the old one. Handlers turn that into
//! typed options for the services or into the shape of a response; nothing else looks at a
//! version. Changes to features berth does not have are noted as comments where their row
//! would be, so the whole changelog is accounted for here.

use crate::version::ApiVersion;

/// A behaviour that differs by API version; see [`row`] for when and what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Change {
    // POST /containers/create
    AutoRemove,
    IpcModePrivateDefault,
    CreatePlatform,
    MountOptionsTypeChecked,
    ConsoleSizeOnCreate,
    HostConfigAnnotations,
    HealthStartInterval,
    MultipleEndpointsOnCreate,
    EndpointMacAddress,
    VolumeSubpath,
    GatewayPriority,
    ImageMounts,
    VolumeDriverWarning,
    ContainerWideMacAddressRemoved,
    EmptyPortBindingsWarning,
    EmptyPortBindingsDropped,
    RecursiveReadOnly,
    // GET /containers/json and /containers/{id}/json
    ListAnnotations,
    ListHealth,
    AliasesAsSubmitted,
    LegacyNetworkSettingsRemoved,
    InspectOnBuildOmittedWhenEmpty,
    // other container endpoints
    WaitCondition,
    WaitRemovalError,
    StopSignal,
    MultiplexedStreamContentType,
    StatsOneShot,
    StatsOsType,
    UpdatePidsLimit,
    UpdateBlkioDevices,
    ExecConsoleSize,
    // images
    ImageCreatePlatform,
    ImageListFilterParamRemoved,
    ImageListNoneTagsRemoved,
    VirtualSizeRemoved,
    ImageInspectCreatedOmitted,
    ImageInspectContainerFieldsRemoved,
    ImageSaveLoadPlatform,
    ImageHistoryPlatform,
    ImageInspectPlatform,
    ImageConfigContainerFieldsRemoved,
    ImageListContainersCount,
    ImageInspectEmptyFieldsOmitted,
    ImageSaveLoadPlatforms,
    // volumes
    VolumePruneAnonymousOnly,
    // networks
    NetworkListSummaries,
    NetworkEnableIpv4,
    // system
    DiskUsageTypeParam,
    BuildCacheParentRemoved,
    InfoRegistryNondistributableRemoved,
    InfoCommitExpectedRemoved,
    InfoFirewallBackend,
    InfoBridgeNfRemoved,
    InfoKernelMemoryTcpRemoved,
    EventsImageCreate,
    EventsLegacyFieldsRemoved,
    EventsContentNegotiation,
    EventsJsonLines,
    DiskUsageSummaries,
    DiskUsageLegacyFieldsRemoved,
}

impl Change {
    /// Every change, in declaration order (`ALL[c as usize] == c`, checked by a test).
    pub const ALL: [Change; 60] = [
        Change::AutoRemove,
        Change::IpcModePrivateDefault,
        Change::CreatePlatform,
        Change::MountOptionsTypeChecked,
        Change::ConsoleSizeOnCreate,
        Change::HostConfigAnnotations,
        Change::HealthStartInterval,
        Change::MultipleEndpointsOnCreate,
        Change::EndpointMacAddress,
        Change::VolumeSubpath,
        Change::GatewayPriority,
        Change::ImageMounts,
        Change::VolumeDriverWarning,
        Change::ContainerWideMacAddressRemoved,
        Change::EmptyPortBindingsWarning,
        Change::EmptyPortBindingsDropped,
        Change::RecursiveReadOnly,
        Change::ListAnnotations,
        Change::ListHealth,
        Change::AliasesAsSubmitted,
        Change::LegacyNetworkSettingsRemoved,
        Change::InspectOnBuildOmittedWhenEmpty,
        Change::WaitCondition,
        Change::WaitRemovalError,
        Change::StopSignal,
        Change::MultiplexedStreamContentType,
        Change::StatsOneShot,
        Change::StatsOsType,
        Change::UpdatePidsLimit,
        Change::UpdateBlkioDevices,
        Change::ExecConsoleSize,
        Change::ImageCreatePlatform,
        Change::ImageListFilterParamRemoved,
        Change::ImageListNoneTagsRemoved,
        Change::VirtualSizeRemoved,
        Change::ImageInspectCreatedOmitted,
        Change::ImageInspectContainerFieldsRemoved,
        Change::ImageSaveLoadPlatform,
        Change::ImageHistoryPlatform,
        Change::ImageInspectPlatform,
        Change::ImageConfigContainerFieldsRemoved,
        Change::ImageListContainersCount,
        Change::ImageInspectEmptyFieldsOmitted,
        Change::ImageSaveLoadPlatforms,
        Change::VolumePruneAnonymousOnly,
        Change::NetworkListSummaries,
        Change::NetworkEnableIpv4,
        Change::DiskUsageTypeParam,
        Change::BuildCacheParentRemoved,
        Change::InfoRegistryNondistributableRemoved,
        Change::InfoCommitExpectedRemoved,
        Change::InfoFirewallBackend,
        Change::InfoBridgeNfRemoved,
        Change::InfoKernelMemoryTcpRemoved,
        Change::EventsImageCreate,
        Change::EventsLegacyFieldsRemoved,
        Change::EventsContentNegotiation,
        Change::EventsJsonLines,
        Change::DiskUsageSummaries,
        Change::DiskUsageLegacyFieldsRemoved,
    ];
}

/// One row: from `since` on, requests get `what`; older ones the behaviour before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub since: ApiVersion,
    pub what: &'static str,
}

const fn v(minor: u32) -> ApiVersion {
    ApiVersion::new(1, minor)
}

const fn r(minor: u32, what: &'static str) -> Row {
    Row {
        since: v(minor),
        what,
    }
}

/// The table. The match is exhaustive, so a new [`Change`] cannot go without its row.
pub const fn row(c: Change) -> Row {
    use Change::*;
    match c {
        // ---- v1.25 ----
        // (1.25: "API version required in all calls", /version MinAPIVersion, /info Isolation,
        // AutoRemove, StopTimeout, Mounts, prune endpoints, Init: all served at every version
        // berth accepts, which starts at 1.24.)
        AutoRemove => r(25, "create: HostConfig.AutoRemove is honoured; API <= 1.24 clients remove the container themselves, so it is ignored for them"),
        ImageListFilterParamRemoved => r(25, "GET /images/json: the singular `filter` (a reference glob) is ignored; older clients get it as a `reference` filter (moby keeps it below 1.25; the CHANGELOG says until 1.40)"),
        // ---- v1.26 to v1.29 ----
        // 1.26 plugin upgrade, 1.27 stats online_cpus (always sent), 1.28 network list:
        NetworkListSummaries => r(28, "GET /networks: summaries without Containers; older clients get each network as inspect shows it"),
        // 1.28 attach/ws binary frames: berth has no websocket attach.
        // 1.28 extrahosts on /build, 1.29 prune label filters, StartPeriod: unversioned in berth.
        // ---- v1.30 ----
        WaitCondition => r(30, "POST /containers/{id}/wait: `condition` is honoured (400 when unknown) and the headers are sent at once; older clients wait for not-running and get headers with the body"),
        // 1.30 copyUIDGID on PUT archive, /distribution: unversioned (no /distribution endpoint in berth).
        // 1.31 secrets 404/409, volume CreatedAt (always sent), /session (experimental, not served).
        // ---- v1.32 ----
        ImageCreatePlatform => r(32, "POST /images/create: `platform` is honoured for pulls"),
        // 1.32 IpcMode private/shareable/none values: accepted at every version.
        // ---- v1.34 ----
        WaitRemovalError => r(34, "wait condition=removed: a failed removal answers {\"Error\":{...}}; older clients get an empty body"),
        // 1.35 logs `until`, exec WorkingDir, /version Platform and Components: unversioned.
        // 1.36 exec_die events, 1.37 SCTP ports, configs/secrets templating (swarm), 1.38
        // NetworkAttachmentSpec (swarm), 1.39 /info Warnings, DefaultAddrPool (swarm): unversioned.
        // ---- v1.40 ----
        IpcModePrivateDefault => r(40, "create: an empty HostConfig.IpcMode is `private`; older clients expect `shareable`"),
        UpdatePidsLimit => r(40, "POST /containers/{id}/update: PidsLimit is honoured; ignored for older clients"),
        // 1.40 BindOptions.NonRecursive, KernelMemoryTCP, DeviceRequests: berth does not
        // implement them, so there is nothing to strip for older clients. `outputs` on /build
        // is BuildKit's.
        // ---- v1.41 ----
        CreatePlatform => r(41, "create: the `platform` query parameter selects the image's platform; ignored for older clients"),
        StatsOneShot => r(41, "GET /containers/{id}/stats: `one-shot` is honoured with stream=false"),
        // 1.41 CgroupnsMode default "host" for older clients on cgroup v1 hosts: berth's
        // default is "host" on v1 and hybrid hosts at every version, "private" on v2 (as moby).
        // 1.41 prune events, CgroupVersion, DefaultAddressPools: unversioned.
        // ---- v1.42 ----
        MountOptionsTypeChecked => r(42, "create: BindOptions/VolumeOptions/TmpfsOptions on a mount of another type are refused (400); older clients have them dropped"),
        ConsoleSizeOnCreate => r(42, "create: HostConfig.ConsoleSize sizes the TTY at creation; ignored for older clients"),
        StopSignal => r(42, "POST /containers/{id}/stop and /restart: `signal` is honoured; ignored for older clients"),
        MultiplexedStreamContentType => r(42, "logs, attach and exec start say `application/vnd.docker.multiplexed-stream` for a non-TTY stream; older clients get `application/vnd.docker.raw-stream` for both"),
        ExecConsoleSize => r(42, "POST /containers/{id}/exec: ConsoleSize is honoured; ignored for older clients"),
        // 1.42 image list `shared-size`: berth does not compute shared sizes (SharedSize is -1).
        VolumePruneAnonymousOnly => r(42, "POST /volumes/prune removes anonymous volumes only unless filter all=true; older clients prune named volumes too"),
        DiskUsageTypeParam => r(42, "GET /system/df: `type` selects the object types computed; ignored for older clients"),
        BuildCacheParentRemoved => r(42, "GET /system/df: BuildCache records have `Parents` and no `Parent`"),
        // 1.42 KernelMemory removed (berth never had it), CreateMountpoint (berth creates
        // missing bind sources of Binds only), attach/ws stream selection (no websocket
        // attach), cluster volumes (no swarm: PUT /volumes/{name} answers 503).
        // ---- v1.43 ----
        HostConfigAnnotations => r(43, "create: HostConfig.Annotations is accepted; ignored for older clients"),
        ImageListNoneTagsRemoved => r(43, "GET /images/json: untagged images have empty RepoTags/RepoDigests; older clients get `<none>:<none>` and `<none>@<none>`"),
        // ---- v1.44 ----
        HealthStartInterval => r(44, "create: Healthcheck.StartInterval is honoured; ignored for older clients"),
        MultipleEndpointsOnCreate => r(44, "create: several EndpointsConfig entries are accepted; older clients get 400"),
        EndpointMacAddress => r(44, "create: EndpointSettings.MacAddress is honoured and Config.MacAddress is deprecated (moved to the main network's endpoint with a warning); older clients' Config.MacAddress moves silently and endpoint MACs are ignored"),
        VirtualSizeRemoved => r(44, "images list, inspect and system df: no VirtualSize; older clients get it (= Size)"),
        ImageInspectCreatedOmitted => r(44, "image inspect: Created is omitted when the config has none; older clients get 0001-01-01T00:00:00Z"),
        RecursiveReadOnly => r(44, "create: read-only bind Mounts are recursively read-only where the kernel can (BindOptions.ReadOnlyNonRecursive / ReadOnlyForceRecursive choose); older clients' are non-recursive"),
        // 1.44 /info CDISpecDirs and Runtimes status, DNSNames: unversioned.
        // ---- v1.45 ----
        VolumeSubpath => r(45, "create: VolumeOptions.Subpath is accepted by the API; older clients get 400 (berth has no subpath support itself)"),
        AliasesAsSubmitted => r(45, "container inspect: Aliases are those submitted; older clients also get the short id and hostname on user-defined networks"),
        ImageInspectContainerFieldsRemoved => r(45, "image inspect: no Container and ContainerConfig; older clients get them"),
        // ---- v1.46 ----
        ListAnnotations => r(46, "GET /containers/json: HostConfig.Annotations is shown"),
        EventsImageCreate => r(46, "events: image `create` events are sent; older clients do not get them"),
        // 1.46 per-endpoint sysctls in DriverOpts (berth applies no endpoint sysctls; top-level
        // net.* sysctls stay at every version), TmpfsOptions.Options, /info Containerd (no
        // containerd), push `platform` (single-platform store).
        // ---- v1.47 ----
        InfoRegistryNondistributableRemoved => r(47, "GET /info: RegistryConfig has no AllowNondistributableArtifacts* fields; older clients get them as null"),
        // 1.47 image list `manifests`: berth's store keeps one platform per image, no index.
        // ---- v1.48 ----
        GatewayPriority => r(48, "create: EndpointSettings.GwPriority is honoured; reset to 0 for older clients"),
        ImageMounts => r(48, "create: a mount of type image is not refused by the API layer; older clients get 400 (berth itself has no image mounts)"),
        VolumeDriverWarning => r(48, "create: HostConfig.VolumeDriver with Mounts of type volume gives a warning"),
        ImageSaveLoadPlatform => r(48, "image save and load: `platform` (JSON OCI platform) selects what is saved or loaded; ignored for older clients"),
        ImageHistoryPlatform => r(48, "image history: `platform` is honoured"),
        // 1.48 ImageManifestDescriptor, Descriptor, image inspect `manifests`, /debug on
        // versioned paths, build prune reserved-space: berth has no multi-platform store, no
        // debug endpoints, and its build prune takes no sizes.
        NetworkEnableIpv4 => r(48, "POST /networks/create: EnableIPv4 is honoured; ignored for older clients"),
        // ---- v1.49 ----
        InfoCommitExpectedRemoved => r(49, "GET /info: ContainerdCommit/RuncCommit/InitCommit have no Expected; older clients get it"),
        InfoFirewallBackend => r(49, "GET /info: FirewallBackend says berth's nftables"),
        ImageInspectPlatform => r(49, "image inspect: `platform` (JSON OCI platform) must be the image's (berth keeps one platform per image), else 404; ignored for older clients"),
        // ---- v1.50 ----
        ImageConfigContainerFieldsRemoved => r(50, "image inspect: Config has no Hostname, Domainname, Attach*, Tty, OpenStdin, StdinOnce, Image; older clients get them empty"),
        InfoBridgeNfRemoved => r(50, "GET /info: no BridgeNfIptables/BridgeNfIp6tables; older clients get false"),
        // 1.50 DiscoveredDevices (no CDI), DELETE /images `platforms` (single-platform store).
        // ---- v1.51 ----
        ImageListContainersCount => r(51, "GET /images/json: Containers counts the containers using each image; older clients get -1"),
        // ---- v1.52 ----
        ContainerWideMacAddressRemoved => r(52, "create: Config.MacAddress is no longer read (only EndpointSettings.MacAddress)"),
        EmptyPortBindingsWarning => r(52, "create: an empty PortBindings list for a port warns that 1.53 will drop it (it still binds a random port)"),
        ListHealth => r(52, "GET /containers/json: Health {Status, FailingStreak}"),
        LegacyNetworkSettingsRemoved => r(52, "container inspect: NetworkSettings loses Bridge, HairpinMode, LinkLocalIPv6*, Secondary*, EndpointID, Gateway, GlobalIPv6*, IPAddress, IPPrefixLen, IPv6Gateway, MacAddress, and Config loses MacAddress; older clients get them from the default bridge"),
        InspectOnBuildOmittedWhenEmpty => r(52, "container inspect: Config.OnBuild is omitted when empty"),
        StatsOsType => r(52, "GET /containers/{id}/stats: os_type is sent"),
        ImageInspectEmptyFieldsOmitted => r(52, "image inspect: Parent, Comment, DockerVersion, Author and the Config fields Cmd, Entrypoint, Env, Labels, OnBuild, User, Volumes, WorkingDir are omitted when empty"),
        ImageSaveLoadPlatforms => r(52, "image save and load: several `platform` values; older clients get 400 for more than one"),
        EventsLegacyFieldsRemoved => r(52, "events: no `status`, `id`, `from`; older clients get them on container and image events"),
        EventsContentNegotiation => r(52, "events: Content-Type negotiated from Accept: application/x-ndjson or application/json-seq (newline-delimited either way, as dockerd 29), else application/json"),
        DiskUsageSummaries => r(52, "GET /system/df: ImageUsage, ContainerUsage, VolumeUsage, BuildCacheUsage, with Items when `verbose`"),
        InfoKernelMemoryTcpRemoved => r(52, "GET /info: no KernelMemoryTCP"),
        // 1.52 network inspect Status (IPAM statistics): not computed by berth yet.
        // 1.52 update KernelMemoryTCP: never honoured by berth. Services SwapBytes: swarm.
        // ---- v1.53 ----
        EmptyPortBindingsDropped => r(53, "create: an empty PortBindings list means no binding; older clients get a random host port"),
        EventsJsonLines => r(53, "events: application/jsonl is also offered"),
        DiskUsageLegacyFieldsRemoved => r(53, "GET /system/df: no LayersSize, Images, Containers, Volumes, BuildCache (1.52 sends them unless `verbose`)"),
        // 1.53 /info NRI (berth has no NRI), image inspect Identity (no signature
        // verification), /grpc and /session deprecated (not served).
        // ---- v1.54 ----
        // 1.54 image list `identity` (no identity data). Network connect MacAddress: berth's
        // connect reads EndpointSettings.MacAddress at every version (moby leaves the 1.54
        // gate as a TODO too).
        // ---- v1.55 ----
        UpdateBlkioDevices => r(55, "POST /containers/{id}/update: BlkioWeightDevice and BlkioDevice{Read,Write}{Bps,IOps} are applied (null keeps, [] clears); ignored for older clients"),
        // 1.55 GET /images/{name}/attestations is served at every version: berth keeps no
        // attestation manifests, so it answers [] for an image it has.
        // Swarm (services, nodes, tasks, secrets, configs, plugins): berth is never in a swarm
        // and answers those endpoints as an inactive dockerd does, at every version.
    }
}

/// The behaviour of one request: the changes its version has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behaviour {
    pub version: ApiVersion,
}

impl Behaviour {
    pub fn new(version: ApiVersion) -> Behaviour {
        Behaviour { version }
    }

    /// Whether this request gets `c`'s behaviour (its version is at least the row's).
    pub fn has(&self, c: Change) -> bool {
        self.version >= row(c).since
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_change_in_order() {
        for (i, c) in Change::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i, "{c:?} out of place in Change::ALL");
        }
        assert_eq!(
            Change::DiskUsageLegacyFieldsRemoved as usize + 1,
            Change::ALL.len(),
            "the last variant ends ALL"
        );
    }

    #[test]
    fn rows_are_within_the_served_range_and_described() {
        for c in Change::ALL {
            let row = row(c);
            assert!(
                row.since > ApiVersion::lowest() && row.since <= ApiVersion::highest(),
                "{c:?}"
            );
            assert!(!row.what.is_empty(), "{c:?}");
        }
    }

    #[test]
    fn versions_pick_behaviour() {
        let at = |s: &str| Behaviour::new(ApiVersion::parse(s).unwrap());
        assert!(!at("1.41").has(Change::VolumePruneAnonymousOnly));
        assert!(at("1.42").has(Change::VolumePruneAnonymousOnly));
        assert!(at("1.55").has(Change::VolumePruneAnonymousOnly));
        assert!(!at("1.51").has(Change::ListHealth));
        assert!(at("1.52").has(Change::ListHealth));
        assert!(!at("1.51").has(Change::LegacyNetworkSettingsRemoved));
        assert!(at("1.52").has(Change::LegacyNetworkSettingsRemoved));
        assert!(at("1.52").has(Change::DiskUsageSummaries));
        assert!(!at("1.52").has(Change::DiskUsageLegacyFieldsRemoved));
        assert!(at("1.53").has(Change::DiskUsageLegacyFieldsRemoved));
        assert!(!at("1.54").has(Change::UpdateBlkioDevices));
        assert!(at("1.55").has(Change::UpdateBlkioDevices));
        assert!(!at("1.24").has(Change::AutoRemove));
        assert!(at("1.25").has(Change::AutoRemove));
        // The highest version has every change.
        let newest = Behaviour::new(ApiVersion::highest());
        assert!(Change::ALL.iter().all(|c| newest.has(*c)));
    }
}
