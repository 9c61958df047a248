use clap::Parser;
use rollcall::{
    app::{self, Application},
    auth::password::Hasher,
    config::{AuditCommand, Cli, Command},
    graphql, services, telemetry,
};

/// mimalloc returns freed memory to the system and does not contend across
/// threads the way glibc's allocator did under load (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::ExportSchema => {
            print!("{}", graphql::sdl());
            Ok(())
        }
        Command::Serve => {
            telemetry::init(config.log_format, &config.log_filter);
            let stop = app::shutdown_signal()?;
            Application::build(config).await?.run_until(stop).await
        }
        Command::Migrate => {
            telemetry::init(config.log_format, &config.log_filter);
            let db = app::connect_database(&config).await?;
            app::migrate(&db).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Audit(AuditCommand::Verify) => {
            telemetry::init(config.log_format, &config.log_filter);
            let db = app::connect_database(&config).await?;
            let reports = services::audit::verify(&db)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut broken = 0;
            for report in &reports {
                match &report.broken {
                    None => println!("ok      {}: {} events", report.name, report.events),
                    Some(reason) => {
                        broken += 1;
                        println!("BROKEN  {}: {reason}", report.name);
                    }
                }
            }
            if broken > 0 {
                anyhow::bail!("{broken} of {} audit chains do not hold", reports.len());
            }
            println!("every audit chain holds ({} chains)", reports.len());
            Ok(())
        }
        Command::CreateAdmin(args) => {
            telemetry::init(config.log_format, &config.log_filter);
            let db = app::connect_database(&config).await?;
            app::migrate(&db).await?;
            let hasher = Hasher::new(1);
            let created = services::accounts::create_super_admin(
                &db,
                &hasher,
                &args.email,
                args.password.as_deref(),
                &args.organization,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("Created super admin {}.", created.user.email);
            if let Some(password) = created.generated_password {
                println!(
                    "Generated password: {}\nIt must be changed at first login.",
                    password.expose()
                );
            }
            Ok(())
        }
    }
}
