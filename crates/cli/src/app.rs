//! Command-line definition (clap) and dispatch.

use std::io::Write;

use berth_client::{Client, Host, TlsOptions, DEFAULT_HOST};
use clap::{ArgAction, Parser, Subcommand};

use crate::args::{
    AttachArgs, CreateArgs, EventsArgs, ExecArgs, ImagesArgs, ImportArgs, InfoArgs, InspectArgs,
    KillArgs, LoadArgs, LogsArgs, NamesArgs, PsArgs, RenameArgs, RmArgs, RmiArgs, RunArgs,
    SaveArgs, StartArgs, StopArgs, TagArgs, TopArgs, TypedInspectArgs, VersionArgs,
};
use crate::commands::{
    build, container, image, network, prune, registry, resources, run, system, volume,
};
use crate::parse::Commands;
use crate::util::{CliError, CmdResult, Ctx};

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    about = "A self-sufficient runtime for containers",
    version = concat!("version ", env!("CARGO_PKG_VERSION")),
    disable_version_flag = true,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Daemon socket to connect to
    #[arg(short = 'H', long = "host", global = true, value_name = "list")]
    pub host: Option<String>,
    /// Use TLS; implied by --tlsverify
    #[arg(long, global = true)]
    pub tls: bool,
    /// Use TLS and verify the remote (default from DOCKER_TLS_VERIFY)
    #[arg(long, global = true)]
    pub tlsverify: bool,
    /// Trust certs signed only by this CA (default "$DOCKER_CERT_PATH/ca.pem", else
    /// "~/.docker/ca.pem")
    #[arg(long, global = true, value_name = "string")]
    pub tlscacert: Option<std::path::PathBuf>,
    /// Path to TLS certificate file (default "$DOCKER_CERT_PATH/cert.pem", else
    /// "~/.docker/cert.pem")
    #[arg(long, global = true, value_name = "string")]
    pub tlscert: Option<std::path::PathBuf>,
    /// Path to TLS key file (default "$DOCKER_CERT_PATH/key.pem", else "~/.docker/key.pem")
    #[arg(long, global = true, value_name = "string")]
    pub tlskey: Option<std::path::PathBuf>,
    /// Print version information and quit
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    pub version: Option<bool>,
    /// The command: the whole set, or only the invoked one when parsed by
    /// [`crate::parse::parse_args`].
    #[command(subcommand)]
    pub cmd: Commands,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Cmd {
    /// Show the berth version information
    Version(VersionArgs),
    /// Display system-wide information
    Info(InfoArgs),
    /// List images
    Images(ImagesArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Return low-level information on Docker objects
    Inspect(InspectArgs),
    /// Create a new container
    Create(CreateArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Create and run a new container from an image
    Run(RunArgs),
    /// List containers
    Ps(PsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(NamesArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Pause all processes within one or more containers
    Pause(NamesArgs),
    /// Unpause all processes within one or more containers
    Unpause(NamesArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Get real time events from the server
    Events(EventsArgs),
    /// Build an image from a Dockerfile
    Build(Box<build::BuildArgs>),
    /// Create a new image from a container's changes
    Commit(build::CommitArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(build::DiffArgs),
    /// Export a container's filesystem as a tar archive
    Export(build::ExportArgs),
    /// Show the history of an image
    History(build::HistoryArgs),
    /// List port mappings or a specific mapping for the container
    Port(network::PortArgs),
    /// Download an image from a registry
    Pull(registry::PullArgs),
    /// Upload an image to a registry
    Push(registry::PushArgs),
    /// Authenticate to a registry
    Login(registry::LoginArgs),
    /// Log out from a registry
    Logout(registry::LogoutArgs),
    /// Search Docker Hub (or a registry that implements search) for images
    Search(registry::SearchArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCmd),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCmd),
    /// Manage networks
    #[command(subcommand)]
    Network(network::NetworkCmd),
    /// Manage Docker
    #[command(subcommand)]
    System(SystemCmd),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCmd),
    /// Copy files/folders between a container and the local filesystem
    Cp(volume::CpArgs),
    /// Update configuration of one or more containers
    Update(resources::UpdateArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(resources::StatsArgs),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum VolumeCmd {
    /// Create a volume
    Create(volume::VolumeCreateArgs),
    /// List volumes
    #[command(visible_aliases = ["list"])]
    Ls(volume::VolumeLsArgs),
    /// Display detailed information on one or more volumes
    Inspect(volume::VolumeInspectArgs),
    /// Remove one or more volumes
    #[command(visible_aliases = ["remove"])]
    Rm(volume::VolumeRmArgs),
    /// Remove unused local volumes
    Prune(volume::VolumePruneArgs),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ContainerCmd {
    /// List containers
    #[command(visible_aliases = ["ps", "list"])]
    Ls(PsArgs),
    /// Create a new container
    Create(CreateArgs),
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(NamesArgs),
    /// Remove one or more containers
    #[command(visible_aliases = ["remove"])]
    Rm(RmArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Pause all processes within one or more containers
    Pause(NamesArgs),
    /// Unpause all processes within one or more containers
    Unpause(NamesArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Display detailed information on one or more containers
    Inspect(TypedInspectArgs),
    /// Create a new image from a container's changes
    Commit(build::CommitArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(build::DiffArgs),
    /// Export a container's filesystem as a tar archive
    Export(build::ExportArgs),
    /// List port mappings or a specific mapping for the container
    Port(network::PortArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(volume::CpArgs),
    /// Remove all stopped containers
    Prune(prune::ContainerPruneArgs),
    /// Update configuration of one or more containers
    Update(resources::UpdateArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(resources::StatsArgs),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ImageCmd {
    /// List images
    #[command(visible_aliases = ["list"])]
    Ls(ImagesArgs),
    /// Build an image from a Dockerfile
    Build(Box<build::BuildArgs>),
    /// Show the history of an image
    History(build::HistoryArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    #[command(visible_aliases = ["remove"])]
    Rm(RmiArgs),
    /// Display detailed information on one or more images
    Inspect(TypedInspectArgs),
    /// Download an image from a registry
    Pull(registry::PullArgs),
    /// Upload an image to a registry
    Push(registry::PushArgs),
    /// Remove unused images
    Prune(prune::ImagePruneArgs),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum SystemCmd {
    /// Get real time events from the server
    Events(EventsArgs),
    /// Display system-wide information
    Info(InfoArgs),
    /// Show docker disk usage
    Df(prune::DfArgs),
    /// Remove unused data
    Prune(prune::SystemPruneArgs),
}

/// Picks the daemon address: `-H`, then `BERTH_HOST`, then `DOCKER_HOST`, then the default.
pub fn resolve_host(flag: Option<&str>, env: &dyn Fn(&str) -> Option<String>) -> String {
    flag.map(str::to_string)
        .or_else(|| env("BERTH_HOST").filter(|v| !v.is_empty()))
        .or_else(|| env("DOCKER_HOST").filter(|v| !v.is_empty()))
        .unwrap_or_else(|| default_host(env, &|p| p.exists()))
}

/// The system daemon's socket, or, when there is none, the user's rootless daemon's
/// (`$XDG_RUNTIME_DIR/berth/berth.sock`) if that one exists.
fn default_host(
    env: &dyn Fn(&str) -> Option<String>,
    exists: &dyn Fn(&std::path::Path) -> bool,
) -> String {
    let system = DEFAULT_HOST.trim_start_matches("unix://");
    if !exists(std::path::Path::new(system)) {
        if let Some(dir) = env("XDG_RUNTIME_DIR").filter(|d| d.starts_with('/')) {
            let user = std::path::Path::new(&dir).join("berth/berth.sock");
            if exists(&user) {
                return format!("unix://{}", user.display());
            }
        }
    }
    DEFAULT_HOST.to_string()
}

/// The TLS the flags and `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH` ask for, as the docker CLI
/// reads them: `None` without `--tls`/`--tlsverify`; files not named by a flag are taken
/// from the certificate directory when they exist there.
pub fn tls_options(cli: &Cli, env: &dyn Fn(&str) -> Option<String>) -> Option<TlsOptions> {
    let verify = cli.tlsverify || env("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty());
    if !verify && !cli.tls {
        return None;
    }
    let dir = env("DOCKER_CERT_PATH")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| env("HOME").map(|h| std::path::Path::new(&h).join(".docker")))
        .unwrap_or_default();
    let pick = |flag: &Option<std::path::PathBuf>, name: &str| {
        flag.clone().or_else(|| {
            let p = dir.join(name);
            p.exists().then_some(p)
        })
    };
    Some(TlsOptions {
        verify,
        ca: pick(&cli.tlscacert, "ca.pem"),
        cert: pick(&cli.tlscert, "cert.pem"),
        key: pick(&cli.tlskey, "key.pem"),
    })
}

/// Parses arguments, runs the command and returns the process exit code.
pub fn main_entry() -> i32 {
    let cli = match crate::parse::parse_args(std::env::args_os().collect()) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => 125,
            };
            let _ = e.print();
            return code;
        }
    };
    // One thread: a command is a few requests and streams that wait on I/O, nothing to run in
    // parallel; worker threads only cost their start-up. Blocking reads of stdin and writes to
    // stdout/stderr still go to tokio's blocking pool, so stdin keeps flowing to an attached
    // container while its output is written.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            return 1;
        }
    };
    let code = rt.block_on(async move {
        let host = resolve_host(cli.host.as_deref(), &|k| std::env::var(k).ok());
        let host = match Host::parse(&host) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        };
        // A command's requests share keep-alive connections (`run` makes five).
        let mut client = Client::new(host).reuse_connections();
        if let Some(tls) = tls_options(&cli, &|k| std::env::var(k).ok()) {
            client = match client.with_tls(&tls) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return 1;
                }
            };
        }
        if let Ok(v) = std::env::var("DOCKER_API_VERSION") {
            client = client.with_version(&v);
        } else {
            // Like the docker CLI, a failed ping is not fatal here: the real request reports it.
            let _ = client.negotiate().await;
        }
        let ctx = Ctx { client };
        match dispatch(&ctx, cli.cmd.0).await {
            Ok(code) => code,
            Err(CliError { code, msg }) => {
                if !msg.is_empty() {
                    let _ = std::io::stdout().flush();
                    eprintln!("{msg}");
                }
                code
            }
        }
    });
    let _ = std::io::stdout().flush();
    // Tasks blocked reading stdin would keep the runtime's shutdown waiting.
    rt.shutdown_background();
    code
}

async fn dispatch(ctx: &Ctx, cmd: Cmd) -> CmdResult {
    match cmd {
        Cmd::Version(a) => system::version(ctx, a).await,
        Cmd::Info(a) | Cmd::System(SystemCmd::Info(a)) => system::info(ctx, a).await,
        Cmd::Images(a) | Cmd::Image(ImageCmd::Ls(a)) => image::images(ctx, a).await,
        Cmd::Load(a) | Cmd::Image(ImageCmd::Load(a)) => image::load(ctx, a).await,
        Cmd::Save(a) | Cmd::Image(ImageCmd::Save(a)) => image::save(ctx, a).await,
        Cmd::Import(a) | Cmd::Image(ImageCmd::Import(a)) => image::import(ctx, a).await,
        Cmd::Tag(a) | Cmd::Image(ImageCmd::Tag(a)) => image::tag(ctx, a).await,
        Cmd::Rmi(a) | Cmd::Image(ImageCmd::Rm(a)) => image::rmi(ctx, a).await,
        Cmd::Image(ImageCmd::Inspect(a)) => container::inspect_typed(ctx, a, "image").await,
        Cmd::Pull(a) | Cmd::Image(ImageCmd::Pull(a)) => registry::pull(ctx, a).await,
        Cmd::Push(a) | Cmd::Image(ImageCmd::Push(a)) => registry::push(ctx, a).await,
        Cmd::Login(a) => registry::login(ctx, a).await,
        Cmd::Logout(a) => registry::logout(ctx, a).await,
        Cmd::Search(a) => registry::search(ctx, a).await,
        Cmd::Inspect(a) => container::inspect(ctx, a).await,
        Cmd::Container(ContainerCmd::Inspect(a)) => {
            container::inspect_typed(ctx, a, "container").await
        }
        Cmd::Create(a) | Cmd::Container(ContainerCmd::Create(a)) => run::create(ctx, a).await,
        Cmd::Run(a) | Cmd::Container(ContainerCmd::Run(a)) => run::run(ctx, a).await,
        Cmd::Start(a) | Cmd::Container(ContainerCmd::Start(a)) => run::start(ctx, a).await,
        Cmd::Attach(a) | Cmd::Container(ContainerCmd::Attach(a)) => run::attach(ctx, a).await,
        Cmd::Exec(a) | Cmd::Container(ContainerCmd::Exec(a)) => run::exec(ctx, a).await,
        Cmd::Ps(a) | Cmd::Container(ContainerCmd::Ls(a)) => container::ps(ctx, a).await,
        Cmd::Logs(a) | Cmd::Container(ContainerCmd::Logs(a)) => container::logs(ctx, a).await,
        Cmd::Stop(a) | Cmd::Container(ContainerCmd::Stop(a)) => {
            container::stop(ctx, a, false).await
        }
        Cmd::Restart(a) | Cmd::Container(ContainerCmd::Restart(a)) => {
            container::stop(ctx, a, true).await
        }
        Cmd::Kill(a) | Cmd::Container(ContainerCmd::Kill(a)) => container::kill(ctx, a).await,
        Cmd::Wait(a) | Cmd::Container(ContainerCmd::Wait(a)) => container::wait(ctx, a).await,
        Cmd::Rm(a) | Cmd::Container(ContainerCmd::Rm(a)) => container::rm(ctx, a).await,
        Cmd::Rename(a) | Cmd::Container(ContainerCmd::Rename(a)) => container::rename(ctx, a).await,
        Cmd::Pause(a) | Cmd::Container(ContainerCmd::Pause(a)) => {
            container::pause(ctx, a, "pause").await
        }
        Cmd::Unpause(a) | Cmd::Container(ContainerCmd::Unpause(a)) => {
            container::pause(ctx, a, "unpause").await
        }
        Cmd::Top(a) | Cmd::Container(ContainerCmd::Top(a)) => container::top(ctx, a).await,
        Cmd::Build(a) | Cmd::Image(ImageCmd::Build(a)) => build::build(ctx, *a).await,
        Cmd::History(a) | Cmd::Image(ImageCmd::History(a)) => build::history(ctx, a).await,
        Cmd::Commit(a) | Cmd::Container(ContainerCmd::Commit(a)) => build::commit(ctx, a).await,
        Cmd::Diff(a) | Cmd::Container(ContainerCmd::Diff(a)) => build::diff(ctx, a).await,
        Cmd::Export(a) | Cmd::Container(ContainerCmd::Export(a)) => build::export(ctx, a).await,
        Cmd::Port(a) | Cmd::Container(ContainerCmd::Port(a)) => network::port(ctx, a).await,
        Cmd::Network(c) => network::network(ctx, c).await,
        Cmd::Cp(a) | Cmd::Container(ContainerCmd::Cp(a)) => volume::cp(ctx, a).await,
        Cmd::Volume(VolumeCmd::Create(a)) => volume::create(ctx, a).await,
        Cmd::Events(a) | Cmd::System(SystemCmd::Events(a)) => system::events(ctx, a).await,
        Cmd::System(SystemCmd::Df(a)) => prune::df(ctx, a).await,
        Cmd::System(SystemCmd::Prune(a)) => prune::system_prune(ctx, a).await,
        Cmd::Container(ContainerCmd::Prune(a)) => prune::container_prune(ctx, a).await,
        Cmd::Image(ImageCmd::Prune(a)) => prune::image_prune(ctx, a).await,
        Cmd::Volume(VolumeCmd::Ls(a)) => volume::ls(ctx, a).await,
        Cmd::Volume(VolumeCmd::Inspect(a)) => volume::inspect(ctx, a).await,
        Cmd::Volume(VolumeCmd::Rm(a)) => volume::rm(ctx, a).await,
        Cmd::Volume(VolumeCmd::Prune(a)) => volume::prune(ctx, a).await,
        Cmd::Update(a) | Cmd::Container(ContainerCmd::Update(a)) => resources::update(ctx, a).await,
        Cmd::Stats(a) | Cmd::Container(ContainerCmd::Stats(a)) => resources::stats(ctx, a).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_options_follow_the_docker_cli() {
        let dir = std::env::temp_dir().join(format!("berth-cli-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), "x").unwrap();
        let d = dir.display().to_string();
        let env = |k: &str| match k {
            "DOCKER_CERT_PATH" => Some(d.clone()),
            _ => None,
        };
        let cli =
            |args: &[&str]| Cli::try_parse_from([&["berth"], args, &["ps"]].concat()).unwrap();
        assert!(tls_options(&cli(&[]), &env).is_none());
        // Files named by no flag come from the directory, when they are there.
        let o = tls_options(&cli(&["--tlsverify"]), &env).unwrap();
        assert!(o.verify);
        assert_eq!(o.ca, Some(dir.join("ca.pem")));
        assert_eq!(o.cert, None);
        let o = tls_options(&cli(&["--tls", "--tlscert", "/c.pem"]), &env).unwrap();
        assert!(!o.verify);
        assert_eq!(o.cert, Some("/c.pem".into()));
        let verify_env = |k: &str| (k == "DOCKER_TLS_VERIFY").then(|| "1".to_string());
        assert!(tls_options(&cli(&[]), &verify_env).unwrap().verify);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn host_precedence() {
        let env = |k: &str| match k {
            "BERTH_HOST" => Some("unix:///b.sock".to_string()),
            "DOCKER_HOST" => Some("unix:///d.sock".to_string()),
            _ => None,
        };
        assert_eq!(resolve_host(Some("tcp://x:1"), &env), "tcp://x:1");
        assert_eq!(resolve_host(None, &env), "unix:///b.sock");
        let env2 = |k: &str| (k == "DOCKER_HOST").then(|| "unix:///d.sock".to_string());
        assert_eq!(resolve_host(None, &env2), "unix:///d.sock");
        assert_eq!(resolve_host(None, &|_| None), DEFAULT_HOST);
    }

    #[test]
    fn without_a_system_daemon_the_users_rootless_socket_is_the_default() {
        let env = |k: &str| (k == "XDG_RUNTIME_DIR").then(|| "/run/user/1000".to_string());
        let user = std::path::Path::new("/run/user/1000/berth/berth.sock");
        assert_eq!(
            default_host(&env, &|p| p == user),
            "unix:///run/user/1000/berth/berth.sock"
        );
        // The system socket wins when it is there; a missing user socket changes nothing.
        assert_eq!(default_host(&env, &|_| true), DEFAULT_HOST);
        assert_eq!(default_host(&env, &|_| false), DEFAULT_HOST);
        assert_eq!(default_host(&|_| None, &|p| p == user), DEFAULT_HOST);
    }

    #[test]
    fn parses_run_like_docker() {
        let cli = Cli::try_parse_from([
            "berth", "run", "--rm", "-it", "-h", "box", "busybox", "sh", "-c", "echo -d",
        ])
        .unwrap();
        let Cmd::Run(r) = cli.cmd.0 else { panic!() };
        assert!(r.create.opts.rm && r.create.opts.interactive && r.create.opts.tty);
        assert_eq!(r.create.opts.hostname.as_deref(), Some("box"));
        assert_eq!(r.create.args, ["busybox", "sh", "-c", "echo -d"]);
        // Flags after the image belong to the command.
        let cli = Cli::try_parse_from(["berth", "run", "busybox", "-d"]).unwrap();
        let Cmd::Run(r) = cli.cmd.0 else { panic!() };
        assert!(!r.detach);
        assert_eq!(r.create.args, ["busybox", "-d"]);
        let cli =
            Cli::try_parse_from(["berth", "-H", "unix:///x", "container", "ls", "-a"]).unwrap();
        assert_eq!(cli.host.as_deref(), Some("unix:///x"));
        assert!(matches!(
            cli.cmd.0,
            Cmd::Container(ContainerCmd::Ls(PsArgs { all: true, .. }))
        ));
        let cli = Cli::try_parse_from(["berth", "exec", "-it", "c1", "ls", "-la"]).unwrap();
        let Cmd::Exec(e) = cli.cmd.0 else { panic!() };
        assert_eq!(e.args, ["c1", "ls", "-la"]);
        let cli = Cli::try_parse_from(["berth", "run", "--sig-proxy=false", "busybox"]).unwrap();
        let Cmd::Run(r) = cli.cmd.0 else { panic!() };
        assert!(!r.sig_proxy);
        assert!(Cli::try_parse_from(["berth", "image", "ls", "-q"]).is_ok());
        assert!(Cli::try_parse_from(["berth", "stop", "-t", "1", "a", "b"]).is_ok());
    }
}
