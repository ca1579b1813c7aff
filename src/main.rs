use kube::CustomResourceExt;
fn main() {
    println!(
        "{}",
        yaml_serde::to_string(&ipamclaim_webhook::types::IPAMClaim::crd()).unwrap()
    );
}
