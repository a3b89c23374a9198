use std::os::unix::fs::MetadataExt;

use libcontainer::oci_spec::runtime::{LinuxCapabilities, Spec};
use serde_json::json;

use super::*;

/// An OCI profile in the shape the daemon writes for Docker's default one: errno default,
/// three architectures, an allow list, conditional rules (one with a repeated argument index),
/// a rule equal to the default action and a name libseccomp does not know.
fn profile(extra: serde_json::Value) -> LinuxSeccomp {
    let mut syscalls = vec![
        json!({"names": ["read", "write", "capset", "capget", "prctl", "getcwd", "exit_group", "no_such_call_xyz"], "action": "SCMP_ACT_ALLOW"}),
        json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}),
        json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "valueTwo": 2114060288u64, "op": "SCMP_CMP_MASKED_EQ"}]}),
        json!({"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}, {"index": 0, "value": 16, "op": "SCMP_CMP_NE"}]}),
        json!({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}),
        json!({"names": ["ptrace"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}),
    ];
    if let serde_json::Value::Array(more) = extra {
        syscalls.extend(more);
    }
    serde_json::from_value(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls,
    }))
    .expect("profile")
}

fn export(ctx: &ScmpFilterContext) -> Vec<u8> {
    let f = tempfile::tempfile().expect("tempfile");
    ctx.export_bpf(&f).expect("export");
    let mut f = f;
    use std::io::Seek;
    f.rewind().expect("rewind");
    let mut out = Vec::new();
    f.read_to_end(&mut out).expect("read");
    out
}

/// Docker's 14 default capabilities.
fn docker_caps() -> LinuxCapabilities {
    let names = json!([
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE"
    ]);
    serde_json::from_value(json!({
        "bounding": names, "effective": names, "permitted": names,
    }))
    .expect("caps")
}

fn process(caps: Option<LinuxCapabilities>, nnp: bool) -> Process {
    let mut p = Process::default();
    p.set_capabilities(caps);
    p.set_no_new_privileges(nnp.then_some(true));
    p
}

#[test]
fn key_is_stable_and_follows_the_profile() {
    let a = profile(json!([]));
    let k = cache_key(&a).expect("key");
    assert_eq!(k.len(), 64);
    assert!(k.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        cache_key(&profile(json!([]))).expect("key"),
        k,
        "same profile, same key"
    );
    let b = profile(json!([{"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]));
    assert_ne!(cache_key(&b).expect("key"), k, "another rule, another key");
    let mut c = a.clone();
    c.set_default_errno_ret(Some(38));
    assert_ne!(cache_key(&c).expect("key"), k, "another errno, another key");
}

/// The same rules added by hand, in libcontainer's order and with its rules.
fn by_hand() -> ScmpFilterContext {
    let mut ctx = ScmpFilterContext::new(ScmpAction::Errno(1)).unwrap();
    for a in [ScmpArch::X8664, ScmpArch::X86, ScmpArch::X32] {
        ctx.add_arch(a).unwrap();
    }
    ctx.set_ctl_nnp(false).unwrap();
    for n in [
        "read",
        "write",
        "capset",
        "capget",
        "prctl",
        "getcwd",
        "exit_group",
    ] {
        ctx.add_rule(ScmpAction::Allow, ScmpSyscall::from_name(n).unwrap())
            .unwrap();
    }
    let sc = |n| ScmpSyscall::from_name(n).unwrap();
    ctx.add_rule_conditional(
        ScmpAction::Allow,
        sc("personality"),
        &[ScmpArgCompare::new(0, ScmpCompareOp::Equal, 0)],
    )
    .unwrap();
    ctx.add_rule_conditional(
        ScmpAction::Allow,
        sc("clone"),
        &[ScmpArgCompare::new(
            0,
            ScmpCompareOp::MaskedEqual(2114060288),
            0,
        )],
    )
    .unwrap();
    for v in [40, 16] {
        ctx.add_rule_conditional(
            ScmpAction::Allow,
            sc("socket"),
            &[ScmpArgCompare::new(0, ScmpCompareOp::NotEqual, v)],
        )
        .unwrap();
    }
    // mkdir's rule equals the default action: skipped.
    ctx.add_rule(ScmpAction::Errno(38), sc("ptrace")).unwrap();
    ctx
}

#[test]
fn translation_matches_libseccomp_for_the_same_rules() {
    let p = profile(json!([]));
    let ours = export(&build(&p).expect("build"));
    assert!(!ours.is_empty() && ours.len().is_multiple_of(8));
    assert_eq!(ours, export(&build(&p).expect("build")), "deterministic");
    assert_eq!(
        ours,
        export(&by_hand()),
        "same program as the rules added by hand"
    );
    // And it differs when a rule does: the comparison can fail.
    let other = profile(json!([{"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]));
    assert_ne!(ours, export(&build(&other).expect("build")));
}

#[test]
fn flags_map_to_the_kernel_flags() {
    let mut p = profile(json!([]));
    assert_eq!(kernel_flags(&p), Ok(0));
    p.set_flags(Some(vec![
        LinuxSeccompFilterFlag::SeccompFilterFlagLog,
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
    ]));
    assert_eq!(kernel_flags(&p), Ok(6));
    p.set_flags(Some(vec![LinuxSeccompFilterFlag::SeccompFilterFlagTsync]));
    assert_eq!(kernel_flags(&p), Ok(1));
    p.set_flags(Some(vec![
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv,
    ]));
    assert!(kernel_flags(&p).is_err());
}

#[test]
fn default_profile_takes_the_fast_path_with_sys_admin_added() {
    let p = profile(json!([]));
    let mut proc_ = process(Some(docker_caps()), false);
    let drop = prepare_process(&p, &mut proc_, true).expect("eligible");
    assert_eq!(drop.effective, 1 << 21);
    assert_eq!(drop.permitted, 1 << 21);
    let caps = proc_.capabilities().clone().unwrap();
    assert!(caps
        .effective()
        .as_ref()
        .unwrap()
        .contains(&Capability::SysAdmin));
    assert!(caps
        .permitted()
        .as_ref()
        .unwrap()
        .contains(&Capability::SysAdmin));
    assert!(
        !caps
            .bounding()
            .as_ref()
            .unwrap()
            .contains(&Capability::SysAdmin),
        "never added to the bounding set"
    );
    assert_eq!(caps.inheritable(), docker_caps().inheritable());
    assert_eq!(caps.ambient(), docker_caps().ambient());
}

#[test]
fn nothing_added_when_not_needed() {
    let p = profile(json!([]));
    // no_new_privileges: no capability needed for the load.
    let mut proc_ = process(Some(docker_caps()), true);
    assert_eq!(
        prepare_process(&p, &mut proc_, true),
        Ok(CapDrop::default())
    );
    assert_eq!(proc_.capabilities().as_ref(), Some(&docker_caps()));
    // Already has CAP_SYS_ADMIN (--cap-add SYS_ADMIN).
    let mut caps = docker_caps();
    let mut set = caps.effective().clone().unwrap();
    set.insert(Capability::SysAdmin);
    caps.set_effective(Some(set.clone()))
        .set_permitted(Some(set));
    let mut proc_ = process(Some(caps.clone()), false);
    assert_eq!(
        prepare_process(&p, &mut proc_, true),
        Ok(CapDrop::default())
    );
    assert_eq!(proc_.capabilities().as_ref(), Some(&caps));
}

#[test]
fn profiles_that_may_block_capset_fall_back() {
    let blocked =
        profile(json!([{"names": ["capset"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]));
    // The ERRNO rule equals the default action and is dropped: capset stays allowed.
    assert!(allows_unconditionally(&blocked, "capset"));
    let blocked =
        profile(json!([{"names": ["capset"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]));
    assert!(!allows_unconditionally(&blocked, "capset"));
    let mut proc_ = process(Some(docker_caps()), false);
    assert_eq!(
        prepare_process(&blocked, &mut proc_, true),
        Err(Ineligible::CapsetNotAllowed)
    );
    assert_eq!(
        proc_.capabilities().as_ref(),
        Some(&docker_caps()),
        "untouched"
    );

    // Not in the allow list at all.
    let mut missing = profile(json!([]));
    let calls: Vec<_> = missing
        .syscalls()
        .clone()
        .unwrap()
        .into_iter()
        .map(|mut c| {
            let names = c
                .names()
                .iter()
                .filter(|n| *n != "capset")
                .cloned()
                .collect();
            c.set_names(names);
            c
        })
        .collect();
    missing.set_syscalls(Some(calls));
    assert!(!allows_unconditionally(&missing, "capset"));

    // Allowed only for some arguments.
    let conditional: LinuxSeccomp = serde_json::from_value(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["capset"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_NE"}]}],
    }))
    .unwrap();
    assert!(!allows_unconditionally(&conditional, "capset"));

    // Default allow: allowed unless a rule says otherwise.
    let open: LinuxSeccomp = serde_json::from_value(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}],
    }))
    .unwrap();
    assert!(allows_unconditionally(&open, "capset"));
    let closed: LinuxSeccomp = serde_json::from_value(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["capset"], "action": "SCMP_ACT_LOG"}],
    }))
    .unwrap();
    assert!(!allows_unconditionally(&closed, "capset"));

    // With no_new_privileges the capset question does not arise.
    let mut proc_ = process(Some(docker_caps()), true);
    assert_eq!(
        prepare_process(&blocked, &mut proc_, true),
        Ok(CapDrop::default())
    );
}

#[test]
fn notify_profiles_fall_back() {
    let p = profile(json!([{"names": ["mkdirat"], "action": "SCMP_ACT_NOTIFY"}]));
    let mut proc_ = process(Some(docker_caps()), true);
    assert_eq!(
        prepare_process(&p, &mut proc_, true),
        Err(Ineligible::Notify)
    );
}

fn bundle_with(dir: &Path, seccomp: Option<LinuxSeccomp>, caps: LinuxCapabilities) {
    let mut spec = Spec::default();
    let mut linux = spec.linux().clone().unwrap();
    linux.set_seccomp(seccomp);
    let mut p = spec.process().clone().unwrap();
    p.set_capabilities(Some(caps)).set_no_new_privileges(None);
    spec.set_linux(Some(linux)).set_process(Some(p));
    fs::create_dir_all(dir.join("rootfs")).unwrap();
    spec.save(dir.join("config.json")).unwrap();
}

#[test]
fn prepare_writes_a_bundle_without_seccomp_and_caches_the_program() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    let work = tmp.path().join("work");
    let cache = tmp.path().join("cache");
    let p = profile(json!([]));
    bundle_with(&bundle, Some(p.clone()), docker_caps());

    let prep = prepare(&bundle, &work, &cache);
    assert!(prep.fallback.is_none());
    assert_eq!(prep.bundle, work);
    let (filter, drop) = prep.init.clone().expect("fast path");
    assert_eq!(drop.effective, 1 << 21);
    assert_eq!(filter.program, export(&build(&p).unwrap()));
    let file = cache.join(format!("{}.bpf", cache_key(&p).unwrap()));
    assert_eq!(fs::read(&file).unwrap(), filter.program);

    let written = Spec::load(work.join("config.json")).unwrap();
    assert!(written.linux().as_ref().unwrap().seccomp().is_none());
    let root = written.root().as_ref().unwrap().path();
    assert!(root.is_absolute() && root.ends_with("rootfs"), "{root:?}");
    let caps = written
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .clone()
        .unwrap();
    assert!(caps
        .effective()
        .as_ref()
        .unwrap()
        .contains(&Capability::SysAdmin));
    // The original bundle is left alone (the daemon derives exec processes from it).
    let orig = Spec::load(bundle.join("config.json")).unwrap();
    assert_eq!(orig.linux().as_ref().unwrap().seccomp().as_ref(), Some(&p));

    // A second container reuses the cached file as it is.
    let before = fs::metadata(&file).unwrap();
    let again = prepare(&bundle, &tmp.path().join("work2"), &cache);
    assert_eq!(again.init.unwrap().0, filter);
    let after = fs::metadata(&file).unwrap();
    assert_eq!(
        (before.ino(), before.mtime_nsec()),
        (after.ino(), after.mtime_nsec())
    );

    // A corrupt cache file is replaced.
    fs::write(&file, b"junk").unwrap();
    let fixed = prepare(&bundle, &tmp.path().join("work3"), &cache);
    assert_eq!(fixed.init.unwrap().0, filter);
}

#[test]
fn prepare_leaves_other_bundles_to_libcontainer() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    // No seccomp (privileged, unconfined).
    let b1 = tmp.path().join("b1");
    bundle_with(&b1, None, docker_caps());
    let prep = prepare(&b1, &tmp.path().join("w1"), &cache);
    assert_eq!(prep.bundle, b1);
    assert!(prep.init.is_none() && prep.exec.is_none() && prep.fallback.is_none());
    // A profile that blocks capset.
    let b2 = tmp.path().join("b2");
    let blocked =
        profile(json!([{"names": ["capset"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]));
    bundle_with(&b2, Some(blocked), docker_caps());
    let prep = prepare(&b2, &tmp.path().join("w2"), &cache);
    assert_eq!(prep.bundle, b2);
    assert!(prep.init.is_none());
    assert!(prep.fallback.unwrap().to_string().contains("capset"));
    assert!(!tmp.path().join("w2").exists());
    assert!(prep.exec.is_some(), "exec processes still get the filter");
    // A notify profile: left alone entirely.
    let b3 = tmp.path().join("b3");
    let notify = profile(json!([{"names": ["mkdirat"], "action": "SCMP_ACT_NOTIFY"}]));
    bundle_with(&b3, Some(notify), docker_caps());
    let prep = prepare(&b3, &tmp.path().join("w3"), &cache);
    assert_eq!(prep.bundle, b3);
    assert!(prep.init.is_none() && prep.exec.is_none());
}

#[test]
fn exec_processes_get_the_container_filter() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let p = profile(json!([]));
    let exec = ExecSeccomp::new(p.clone(), &cache, None);
    let proc_ = serde_json::to_value(process(Some(docker_caps()), false)).unwrap();
    let (data, filter, drop) = exec.prepare_exec(&proc_).unwrap();
    assert_eq!(drop.effective, 1 << 21);
    assert_eq!(
        filter.program,
        export(&build(&p).unwrap()),
        "compiled on first use"
    );
    assert!(cache
        .join(format!("{}.bpf", cache_key(&p).unwrap()))
        .exists());
    let back: Process = serde_json::from_slice(&data).unwrap();
    let caps = back.capabilities().clone().unwrap();
    assert!(caps
        .permitted()
        .as_ref()
        .unwrap()
        .contains(&Capability::SysAdmin));
    let proc_ = serde_json::to_value(process(Some(docker_caps()), true)).unwrap();
    assert_eq!(exec.prepare_exec(&proc_).unwrap().2, CapDrop::default());

    // A profile that may refuse capset: exec still gets its filter (the drop is attempted).
    let blocked =
        profile(json!([{"names": ["capset"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]));
    let exec = ExecSeccomp::new(blocked, &cache, None);
    let proc_ = serde_json::to_value(process(Some(docker_caps()), false)).unwrap();
    assert_eq!(exec.prepare_exec(&proc_).unwrap().2.effective, 1 << 21);
}
