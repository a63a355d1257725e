//! Which of aws-lc's RSA code paths signs DKIM on this CPU.
//!
//! aws-lc, like OpenSSL, has three ways to compute an RSA-2048 signature on
//! x86-64: AVX-512 IFMA code when the CPU has it; otherwise Montgomery code
//! built on `mulx`/`adcx`/`adox` when the CPU has BMI1, BMI2 and ADX; and
//! AVX2 code (RSAZ) for the rest. It prefers `mulx` to AVX2 because that is
//! faster on Intel. On AMD Zen 3, the AVX2 code signs faster: 0.77 ms
//! against 0.93 ms a signature with aws-lc, and about 15% more messages a
//! second end to end (docs/benchmarks.md, ninth session).
//!
//! aws-lc reads the CPU's features once, when the library loads, and lets
//! the `OPENSSL_ia32cap` environment variable mask some of them then. So on
//! an AMD CPU with AVX2 and ADX but without AVX-512 IFMA, `serve` starts
//! itself again (`exec`, same process id) with ADX masked, unless told
//! otherwise (`--rsa-path`) or `OPENSSL_ia32cap` is set already. Masking
//! ADX also moves aws-lc's elliptic-curve code (TLS key exchange) to its
//! generic paths; delivery reuses connections, so that costs little.

use std::ffi::OsString;

/// The variable aws-lc reads its CPU feature mask from.
pub const VAR: &str = "OPENSSL_ia32cap";
/// Clears ADX (CPUID leaf 7, EBX bit 19) and leaves every other feature.
pub const MASK: &str = ":~0x80000";

/// `--rsa-path`: what the operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaPath {
    /// AVX2 on the CPUs where it was measured faster, else aws-lc's choice.
    Auto,
    /// AVX2 whatever the CPU.
    Avx2,
    /// aws-lc's own choice.
    Default,
}

impl RsaPath {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "avx2" => Ok(Self::Avx2),
            "default" => Ok(Self::Default),
            other => Err(format!(
                "invalid RSA path {other:?}: it must be auto, avx2 or default"
            )),
        }
    }
}

/// What decides the choice, read from CPUID.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    pub amd: bool,
    pub avx2: bool,
    pub adx: bool,
    pub avx512ifma: bool,
}

impl Cpu {
    #[cfg(target_arch = "x86_64")]
    pub fn detect() -> Self {
        let v = std::arch::x86_64::__cpuid(0);
        let mut vendor = [0u8; 12];
        vendor[..4].copy_from_slice(&v.ebx.to_le_bytes());
        vendor[4..8].copy_from_slice(&v.edx.to_le_bytes());
        vendor[8..].copy_from_slice(&v.ecx.to_le_bytes());
        Self {
            amd: &vendor == b"AuthenticAMD",
            avx2: std::arch::is_x86_feature_detected!("avx2"),
            adx: std::arch::is_x86_feature_detected!("adx"),
            avx512ifma: std::arch::is_x86_feature_detected!("avx512ifma"),
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn detect() -> Self {
        Self::default()
    }

    /// Whether aws-lc would sign with `mulx` code where its AVX2 code is
    /// faster: AMD (Zen 1 to 3) without AVX-512 IFMA.
    pub fn prefers_avx2(&self) -> bool {
        self.amd && self.avx2 && self.adx && !self.avx512ifma
    }
}

/// What to do at start.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Start again with `OPENSSL_ia32cap` set to [`MASK`].
    Restart,
    /// Carry on; the string says why, for the log.
    Stay(String),
}

/// Decides from the request, the CPU and the variable's current value.
pub fn plan(wanted: RsaPath, cpu: &Cpu, current: Option<&OsString>) -> Plan {
    if let Some(v) = current {
        return Plan::Stay(if v == MASK {
            "aws-lc signs RSA with its AVX2 code (OPENSSL_ia32cap masks ADX)".into()
        } else {
            format!("OPENSSL_ia32cap is set ({v:?}): aws-lc's RSA path is left to it")
        });
    }
    // Off x86-64, `Cpu::detect` reports no features, so nothing restarts.
    match wanted {
        RsaPath::Avx2 if cpu.avx2 => Plan::Restart,
        RsaPath::Avx2 => Plan::Stay("--rsa-path avx2: this CPU has no AVX2; aws-lc chooses".into()),
        RsaPath::Auto if cpu.prefers_avx2() => Plan::Restart,
        RsaPath::Auto | RsaPath::Default => Plan::Stay("aws-lc chooses its RSA path".into()),
    }
}

/// Replaces this process with a fresh run of the same binary and arguments,
/// with [`MASK`] set. Returns only if that failed.
#[cfg(unix)]
pub fn restart() -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return e,
    };
    let mut args = std::env::args_os();
    let mut cmd = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    cmd.args(args).env(VAR, MASK).exec()
}

#[cfg(not(unix))]
pub fn restart() -> std::io::Error {
    std::io::Error::other("restarting is only supported on Unix")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZEN3: Cpu = Cpu {
        amd: true,
        avx2: true,
        adx: true,
        avx512ifma: false,
    };

    #[test]
    fn auto_restarts_only_on_amd_without_ifma() {
        assert_eq!(plan(RsaPath::Auto, &ZEN3, None), Plan::Restart);
        let zen4 = Cpu {
            avx512ifma: true,
            ..ZEN3
        };
        assert!(matches!(plan(RsaPath::Auto, &zen4, None), Plan::Stay(_)));
        let intel = Cpu { amd: false, ..ZEN3 };
        assert!(matches!(plan(RsaPath::Auto, &intel, None), Plan::Stay(_)));
        let no_adx = Cpu { adx: false, ..ZEN3 };
        assert!(
            matches!(plan(RsaPath::Auto, &no_adx, None), Plan::Stay(_)),
            "without ADX aws-lc uses AVX2 already"
        );
    }

    #[test]
    fn explicit_choices_and_the_operators_variable_win() {
        let intel = Cpu { amd: false, ..ZEN3 };
        assert_eq!(plan(RsaPath::Avx2, &intel, None), Plan::Restart);
        assert!(matches!(
            plan(RsaPath::Avx2, &Cpu::default(), None),
            Plan::Stay(_)
        ));
        assert!(matches!(plan(RsaPath::Default, &ZEN3, None), Plan::Stay(_)));
        let theirs = OsString::from("~0x0:~0x100");
        match plan(RsaPath::Avx2, &ZEN3, Some(&theirs)) {
            Plan::Stay(why) => assert!(why.contains("left to it"), "{why}"),
            Plan::Restart => panic!("an operator's OPENSSL_ia32cap must be kept"),
        }
        // After the restart the variable is ours: no second restart.
        let ours = OsString::from(MASK);
        match plan(RsaPath::Auto, &ZEN3, Some(&ours)) {
            Plan::Stay(why) => assert!(why.contains("AVX2"), "{why}"),
            Plan::Restart => panic!("restarted twice"),
        }
    }

    #[test]
    fn parses_the_three_choices_and_refuses_others() {
        assert_eq!(RsaPath::parse("auto"), Ok(RsaPath::Auto));
        assert_eq!(RsaPath::parse("avx2"), Ok(RsaPath::Avx2));
        assert_eq!(RsaPath::parse("default"), Ok(RsaPath::Default));
        assert!(
            RsaPath::parse("AVX2")
                .unwrap_err()
                .contains("auto, avx2 or default")
        );
    }
}
