//! Entry point: the command line with this build's compiled plugins.

fn main() -> std::process::ExitCode {
    deploystack_backend::cli::entry::main_with(deploystack_backend::plugins::registered::compiled())
}
