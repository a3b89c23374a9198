//! The arguments of the container, image and system commands (clap), shared by the command
//! line's definition (`app`) and the commands that carry them out.

use clap::{ArgAction, Args};

use crate::opts::ContainerOpts;

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long)]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// [REPOSITORY[:TAG]]
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long, value_name = "string")]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long, value_name = "string")]
    pub output: Option<String>,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "list")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long, value_name = "string")]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// file|URL|-
    pub source: String,
    /// [REPOSITORY[:TAG]]
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    pub size: bool,
    /// Return JSON for specified type
    #[arg(long = "type", value_name = "string")]
    pub kind: Option<String>,
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct TypedInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    #[command(flatten)]
    pub opts: ContainerOpts,
    /// Print usage
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the process
    #[arg(long = "sig-proxy", default_value = "true", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub sig_proxy: bool,
    /// Every option and argument of `create`.
    #[command(flatten)]
    pub create: CreateArgs,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long, value_name = "int", default_value_t = -1, allow_hyphen_values = true)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub size: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, value_name = "string", default_value = "all")]
    pub tail: String,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "string")]
    pub since: Option<String>,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "string")]
    pub until: Option<String>,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "timeout",
        alias = "time",
        value_name = "int",
        allow_hyphen_values = true
    )]
    pub timeout: Option<i64>,
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "string")]
    pub signal: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "string")]
    pub signal: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct NamesArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Remove the specified link
    #[arg(short = 'l', long)]
    pub link: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "string")]
    pub workdir: Option<String>,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long, value_name = "string")]
    pub user: Option<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// CONTAINER COMMAND [ARG...]
    #[arg(required = true, num_args = 2.., trailing_var_arg = true, allow_hyphen_values = true, value_name = "CONTAINER COMMAND [ARG...]")]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", default_value = "true", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub sig_proxy: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

#[derive(Args, Debug)]
pub struct TopArgs {
    pub container: String,
    /// [ps OPTIONS]
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}
