#include <linux/module.h>
#include <linux/init.h>
#include <linux/version.h>

/* Like a vendor's VPN driver the machine loads at boot (modules-load.d):
 * version 1.0 builds on the kernels it was written for only. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(@FAIL_FROM@)
#error "vpndrv 1.0 does not support this kernel"
#endif

static int __init vpndrv_init(void) { return 0; }
static void __exit vpndrv_exit(void) { }
module_init(vpndrv_init);
module_exit(vpndrv_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("dkms-guard end-to-end test module");
